"""The scanned project as the rules see it: modules, name resolution, apps, tasks, call sites.

Resolution follows imports between modules of the scanned tree, so ``from shop.tasks import
send as send_mail_task`` then ``send_mail_task.delay(...)`` in another module finds the task
``shop.tasks.send`` and the framework of the app it is registered on.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from errands.check.evaluate import is_true
from errands.check.model import Framework
from errands.check.source import DeployLine, Module, SourceSet

__all__ = ["AppDef", "FunctionInfo", "FunctionNode", "Option", "Project", "Site", "TaskDef"]

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

_BUILTINS = frozenset(dir(builtins))


@dataclass(eq=False, slots=True)
class AppDef:
    """A ``Celery(...)`` or ``errands.App(...)`` bound to a module-level name."""

    module: Module
    name: str
    call: ast.Call
    framework: Framework


@dataclass(eq=False, slots=True)
class Option:
    """A task option as written: in the decorator, or on a base class in the scanned tree."""

    value: ast.expr
    module: Module
    node: ast.AST


@dataclass(eq=False, slots=True)
class FunctionInfo:
    """A function of the scanned tree and what its body can see."""

    module: Module
    node: FunctionNode
    local: Mapping[str, str]
    is_method: bool
    task: TaskDef | None = None


@dataclass(eq=False, slots=True)
class TaskDef:
    """A function registered as a task.

    Attributes:
        module: where it is defined.
        node: the function.
        framework: Celery or errands.
        qualname: ``module.function``, the key the rest of the checker uses.
        name: the name it is registered under (``name=`` or ``module.function``).
        options: the decorator's keywords, then the base class's attributes under them.
        complete: False when some options cannot be seen (``**options``, a base class outside
            the tree): rules that fire on a missing option stay quiet then.
        periodic: declared with Celery's old ``@periodic_task``.
        app: the app it is registered on, when known.
    """

    module: Module
    node: FunctionNode
    framework: Framework
    qualname: str
    name: str
    options: dict[str, Option]
    complete: bool
    periodic: bool
    app: AppDef | None
    info: FunctionInfo | None = None

    def option(self, key: str) -> ast.expr | None:
        """The expression given for option `key`, if any."""
        found = self.options.get(key)
        return None if found is None else found.value

    @property
    def bound(self) -> bool:
        """Whether the task receives its context (``self`` or ``ctx``) first: ``bind=True``."""
        return is_true(self.option("bind"))

    @property
    def context_param(self) -> str | None:
        """The name of the parameter that receives the task context, for a bound task."""
        args = self.node.args.posonlyargs + self.node.args.args
        return args[0].arg if self.bound and args else None


@dataclass(eq=False, slots=True)
class Site:
    """A call somewhere in the tree, with the function it is in."""

    module: Module
    node: ast.Call
    function: FunctionInfo | None

    @property
    def local(self) -> Mapping[str, str]:
        """The imports visible at the call (function-level ones first)."""
        return self.function.local if self.function else self.module.imports


@dataclass(eq=False)
class Project:
    """Everything the rules query, built once by `discovery.build_project`."""

    modules: list[Module]
    deploy_lines: list[DeployLine]
    by_name: dict[str, Module] = field(default_factory=dict)
    apps: dict[str, AppDef] = field(default_factory=dict)
    tasks: dict[str, TaskDef] = field(default_factory=dict)
    functions: dict[FunctionNode, FunctionInfo] = field(default_factory=dict)
    sites: list[Site] = field(default_factory=list)
    assignments: list[tuple[Module, ast.Assign, FunctionInfo | None]] = field(default_factory=list)
    imported: set[Framework] = field(default_factory=set)
    sources: SourceSet | None = None
    on_load: Callable[[Module], None] | None = None

    # Name resolution ----------------------------------------------------------------------

    def module_named(self, name: str) -> Module | None:
        """The tree module called `name`, parsing it now if it was skipped up front."""
        found = self.by_name.get(name)
        if found is None and self.sources is not None and name in self.sources.deferred:
            found = self.sources.load(name)
            if found is not None:
                for alias in (found.name, *found.aliases):
                    self.by_name.setdefault(alias, found)
                    self.sources.deferred.pop(alias, None)
                if self.on_load is not None:
                    self.on_load(found)
        return found

    def canonical(self, dotted: str, depth: int = 0) -> str:
        """Follow re-exports inside the tree to the module that defines `dotted`."""
        whole = self.module_named(dotted)
        if whole is not None:
            return whole.name
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            module = self.module_named(".".join(parts[:i]))
            if module is None:
                continue
            head, rest = parts[i], parts[i + 1 :]
            if head in module.defs or head in module.assigns:
                return ".".join([module.name, head, *rest])
            target = module.imports.get(head)
            if target is not None and depth < 10:
                return self.canonical(".".join([target, *rest]), depth + 1)
            # Not defined there: a submodule the tree does not hold, or not the tree's at all.
            return dotted
        return dotted

    def resolve(
        self, module: Module, expr: ast.expr, local: Mapping[str, str] | None = None
    ) -> str | None:
        """The dotted name `expr` refers to (``celery.shared_task``, ``shop.tasks.send``)."""
        if isinstance(expr, ast.Attribute):
            base = self.resolve(module, expr.value, local)
            return None if base is None else self.canonical(f"{base}.{expr.attr}")
        if not isinstance(expr, ast.Name):
            return None
        name = expr.id
        table = local if local is not None else module.imports
        if name in table and (name not in module.imports or table[name] != module.imports[name]):
            return self.canonical(table[name])
        if name in module.defs or name in module.assigns:
            return f"{module.name}.{name}"
        if name in table:
            return self.canonical(table[name])
        return f"builtins.{name}" if name in _BUILTINS else None

    def definition(self, qualname: str | None) -> tuple[Module, str] | None:
        """The module and local name defining `qualname` in the tree, if it is defined there."""
        if qualname is None or "." not in qualname:
            return None
        head, _, name = qualname.rpartition(".")
        module = self.module_named(head)
        if module is not None and (name in module.defs or name in module.assigns):
            return module, name
        return None

    def function_def(self, qualname: str | None) -> FunctionInfo | None:
        """The tree function `qualname` names, if it is one."""
        found = self.definition(qualname)
        if found is None:
            return None
        node = found[0].defs.get(found[1])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return self.functions.get(node)
        return None

    def task_at(
        self, site_module: Module, expr: ast.expr, local: Mapping[str, str]
    ) -> TaskDef | None:
        """The task `expr` (the receiver of ``.delay`` and the like) refers to, if known."""
        return self.tasks.get(self.resolve(site_module, expr, local) or "")

    def lookup(self, module: Module) -> _Lookup:
        """A name -> module-level value function, for `evaluate.literal` and friends."""
        return _Lookup(self, module)

    def task_sites(self, *attrs: str) -> Iterator[tuple[Site, TaskDef | None]]:
        """Calls ``X.<attr>(...)`` for `attrs`, with the task X resolves to, if any."""
        for site in self.sites:
            func = site.node.func
            if isinstance(func, ast.Attribute) and func.attr in attrs:
                yield site, self.task_at(site.module, func.value, site.local)


@dataclass(frozen=True, slots=True)
class _Lookup:
    project: Project
    module: Module

    def __call__(self, name: str) -> ast.expr | None:
        value = self.module.assigns.get(name)
        if value is not None:
            return value
        target = self.module.imports.get(name)
        found = self.project.definition(self.project.canonical(target)) if target else None
        return found[0].assigns.get(found[1]) if found else None
