"""What every rule receives: the project, its Celery settings, and helpers to report."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from errands.check.config import CeleryConfig
from errands.check.model import Finding, Framework, Rule
from errands.check.project import FunctionInfo, Project, TaskDef
from errands.check.scope import Scope
from errands.check.source import DeployLine, Module

__all__ = ["Context"]


@dataclass(eq=False)
class Context:
    """The state one run of the rules shares; scopes are built once per function, on demand."""

    project: Project
    config: CeleryConfig
    _scopes: dict[FunctionInfo, Scope] = field(default_factory=dict)

    @classmethod
    def build(cls, project: Project) -> Context:
        """A context for `project`, with its Celery settings collected."""
        return cls(project, CeleryConfig(project))

    def scope(self, info: FunctionInfo) -> Scope:
        """The local bindings of a function (cached)."""
        found = self._scopes.get(info)
        if found is None:
            found = self._scopes[info] = Scope(info)
        return found

    def tasks(self, framework: Framework | None = None) -> list[TaskDef]:
        """The tasks of the project, of one framework when given, in source order."""
        return [t for t in self.project.tasks.values() if framework in (None, t.framework)]

    def finding(
        self, rule: Rule, module: Module, node: ast.AST, message: str, fix: str | None = None
    ) -> Finding:
        """A finding of `rule` at `node` in `module`."""
        return Finding(
            path=module.display,
            line=getattr(node, "lineno", 1),
            column=getattr(node, "col_offset", 0) + 1,
            code=rule.code,
            message=message,
            fix=fix or rule.fix,
            severity=rule.severity,
        )

    def deploy_finding(
        self, rule: Rule, line: DeployLine, message: str, fix: str | None = None
    ) -> Finding:
        """A finding of `rule` on a line of a deployment file."""
        return Finding(
            path=line.display,
            line=line.line,
            column=1,
            code=rule.code,
            message=message,
            fix=fix or rule.fix,
            severity=rule.severity,
        )
