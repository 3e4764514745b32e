"""Finding the apps and tasks of a project, and indexing its modules' functions and calls.

`build_project` turns parsed sources into a `Project`: one walk per module records its
functions (with the imports each one sees), its calls and its attribute assignments; then
module-level ``Celery(...)`` and ``errands.App(...)`` bindings become apps, and functions whose
decorator resolves to one of them (or to ``shared_task``) become tasks.
"""

from __future__ import annotations

import ast
from collections import ChainMap
from collections.abc import Mapping

from errands.check.evaluate import literal
from errands.check.model import Framework
from errands.check.project import (
    AppDef,
    FunctionInfo,
    FunctionNode,
    Option,
    Project,
    Site,
    TaskDef,
)
from errands.check.source import Module, SourceSet, import_bindings, top_level

__all__ = ["app_of", "build_project"]

_CELERY_APPS = frozenset({"celery.Celery", "celery.app.Celery", "celery.app.base.Celery"})
_ERRANDS_APPS = frozenset({"errands.App", "errands.app.App"})
_APP_CLASSES = dict.fromkeys(_CELERY_APPS, Framework.CELERY) | dict.fromkeys(
    _ERRANDS_APPS, Framework.ERRANDS
)
_CELERY_DECORATORS = frozenset(
    {
        "celery.shared_task",
        "celery.app.shared_task",
        "celery.task",
        "celery.task.task",
        "celery.decorators.task",
    }
)
_CELERY_PERIODIC = frozenset({"celery.task.periodic_task", "celery.decorators.periodic_task"})
_CELERY_CURRENT_APP = frozenset({"celery.current_app", "celery.app.current_app"})
_CELERY_TASK_BASES = frozenset({"celery.Task", "celery.app.task.Task", "celery.task.Task"})
# Nodes with nothing inside that matters: never pushed on the indexer's stack.
_LEAVES = frozenset(
    {ast.Name, ast.Constant, ast.Load, ast.Store, ast.Del, ast.Pass, ast.Break, ast.Continue}
    | {ast.alias, ast.arg}
)
# Other libraries whose objects also have a `.task` decorator: never guessed to be Celery's.
_OTHER_QUEUES = frozenset({"huey", "dramatiq", "rq", "arq", "taskiq", "prefect", "airflow"})


def build_project(sources: SourceSet) -> Project:
    """Index `sources`: modules by name, apps, tasks and every call site."""
    project = Project(modules=sources.modules, deploy_lines=sources.deploy_lines, sources=sources)
    # Modules parsed on demand later (a model class, a constant) are indexed for their
    # functions and classes only: they hold no call worth checking.
    project.on_load = lambda module: _Indexer(project, module, record=False).run()
    for module in project.modules:
        for name in (module.name, *module.aliases):
            project.by_name.setdefault(name, module)
    for module in project.modules:
        _Indexer(project, module).run()
    for module in project.modules:
        _find_apps(project, module)
    for module in project.modules:
        _find_tasks(project, module)
    return project


def _app_framework(project: Project, module: Module, value: ast.expr) -> Framework | None:
    if not isinstance(value, ast.Call):
        return None
    return _app_class(project, project.resolve(module, value.func))


def _app_class(project: Project, called: str | None, depth: int = 0) -> Framework | None:
    """The framework of an app class: Celery, App, a subclass of either, or a factory."""
    if called in _APP_CLASSES:
        return _APP_CLASSES[called]
    found = project.definition(called)
    if found is None or depth > 5:
        return None
    node = found[0].defs.get(found[1])
    if isinstance(node, ast.ClassDef):
        # A subclass of Celery or App defined in the tree.
        for base in node.bases:
            framework = _app_class(project, project.resolve(found[0], base), depth + 1)
            if framework is not None:
                return framework
    elif isinstance(node, ast.FunctionDef):
        # A factory (`celery = make_celery(app)`) that builds the app itproject.
        for inner in ast.walk(node):
            if isinstance(inner, ast.Call):
                framework = _APP_CLASSES.get(project.resolve(found[0], inner.func) or "")
                if framework is not None:
                    return framework
    return None


def _find_apps(project: Project, module: Module) -> None:
    configured = _configured_like_celery(module)
    for name, value in module.assigns.items():
        framework = _app_framework(project, module, value)
        if framework is None and name in configured:
            # Built by a class chosen at run time (`import_string(setting)(...)`), but
            # configured the way only a Celery app is.
            framework = Framework.CELERY
        if framework is not None and isinstance(value, ast.Call):
            project.apps[f"{module.name}.{name}"] = AppDef(module, name, value, framework)


def app_of(  # noqa: PLR0911 - each return is one way an app is (not) recognised
    project: Project, module: Module, expr: ast.expr, local: Mapping[str, str] | None = None
) -> tuple[Framework, AppDef | None] | None:
    """The framework (and app) of an expression used as an app: ``app`` in ``@app.task``."""
    qualname = project.resolve(module, expr, local)
    if qualname in project.apps:
        app = project.apps[qualname]
        return app.framework, app
    if qualname in _CELERY_CURRENT_APP:
        return Framework.CELERY, None
    root = (qualname or "").split(".")[0]
    if root in _OTHER_QUEUES:
        return None
    found = project.definition(qualname)
    if found is not None:
        value = found[0].assigns.get(found[1])
        # A tree object that is not a known app: only a factory of unknown kind may be one.
        if not isinstance(value, ast.Call):
            return None
        factory = project.resolve(found[0], value.func)
        if factory is not None and project.function_def(factory) is None:
            return None
    # Unknown app object: trust it only when the tree imports exactly one framework.
    if len(project.imported) == 1:
        return next(iter(project.imported)), None
    return None


# Tasks ----------------------------------------------------------------------------------


def _find_tasks(project: Project, module: Module) -> None:
    for name, node in module.defs.items():
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            task = _task_from(project, module, node, decorator)
            if task is not None:
                task.info = project.functions.get(node)
                if task.info is not None:
                    task.info.task = task
                project.tasks[f"{module.name}.{name}"] = task
                break


def _task_from(
    project: Project, module: Module, node: FunctionNode, decorator: ast.expr
) -> TaskDef | None:
    func = decorator.func if isinstance(decorator, ast.Call) else decorator
    called = project.resolve(module, func)
    app: AppDef | None = None
    periodic = called in _CELERY_PERIODIC
    if called in _CELERY_DECORATORS or periodic:
        framework = Framework.CELERY
    elif isinstance(func, ast.Attribute) and func.attr in {"task", "periodic_task"}:
        found = app_of(project, module, func.value)
        if found is None:
            return None
        framework, app = found
        periodic = func.attr == "periodic_task"
    else:
        return None
    options: dict[str, Option] = {}
    complete = True
    if isinstance(decorator, ast.Call):
        for kw in decorator.keywords:
            if kw.arg is None:
                complete = False
            else:
                options[kw.arg] = Option(kw.value, module, kw)
    if "base" in options:
        complete &= _inherit(project, module, options["base"].value, options)
    name_value = literal(options["name"].value) if "name" in options else None
    name = name_value if isinstance(name_value, str) else f"{module.name}.{node.name}"
    return TaskDef(
        module=module,
        node=node,
        framework=framework,
        qualname=f"{module.name}.{node.name}",
        name=name,
        options=options,
        complete=complete,
        periodic=periodic,
        app=app,
    )


def _inherit(project: Project, module: Module, base: ast.expr, options: dict[str, Option]) -> bool:
    """Add a tree base class's attributes under `options`; False if the base is unknown."""
    qualname = project.resolve(module, base)
    if qualname in _CELERY_TASK_BASES:
        return True
    found = project.definition(qualname)
    node = found[0].defs.get(found[1]) if found else None
    if found is None or not isinstance(node, ast.ClassDef):
        return False
    complete = True
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    options.setdefault(target.id, Option(stmt.value, found[0], stmt))
    for parent in node.bases:
        complete &= _inherit(project, found[0], parent, options)
    return complete


def _configured_like_celery(module: Module) -> set[str]:
    """Module-level names on which `config_from_object` or `autodiscover_tasks` is called."""
    found: set[str] = set()
    for stmt in top_level(module.tree.body):
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            continue
        func = stmt.value.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in {"config_from_object", "autodiscover_tasks"}
            and isinstance(func.value, ast.Name)
        ):
            found.add(func.value.id)
    return found


class _Indexer:
    """One walk over a module: its functions, their local imports, calls and assignments."""

    def __init__(self, project: Project, module: Module, *, record: bool = True) -> None:
        self.project = project
        self.module = module
        self.record = record

    def run(self) -> None:
        for target in self.module.imports.values():
            root = target.split(".")[0]
            if root in {"celery", "errands"}:
                self.project.imported.add(Framework(root))
        self._visit(self.module.tree, None, self.module.imports, in_class=False)

    def _visit(
        self, root: ast.AST, fn: FunctionInfo | None, local: Mapping[str, str], *, in_class: bool
    ) -> None:
        # An explicit stack and a skip list of leaf types: this walk touches every node of every
        # parsed module, so its cost per node sets the checker's speed (docs/performance.md).
        stack: list[tuple[ast.AST, FunctionInfo | None, Mapping[str, str], bool]] = [
            (root, fn, local, in_class)
        ]
        while stack:
            node, fn, local, in_class = stack.pop()
            for field_name in node._fields:
                value = getattr(node, field_name, None)
                if isinstance(value, list):
                    children: list[ast.AST] = [c for c in value if isinstance(c, ast.AST)]
                elif isinstance(value, ast.AST):
                    children = [value]
                else:
                    continue
                for child in reversed(children):
                    if type(child) in _LEAVES:
                        continue
                    stack.append(self._enter(child, fn, local, in_class))

    def _enter(
        self, child: ast.AST, fn: FunctionInfo | None, local: Mapping[str, str], in_class: bool
    ) -> tuple[ast.AST, FunctionInfo | None, Mapping[str, str], bool]:
        """Record `child` and return the context its own children are visited in."""
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            scope: ChainMap[str, str] = ChainMap({}, dict(local))
            info = FunctionInfo(self.module, child, scope, is_method=in_class)
            self.project.functions[child] = info
            return child, info, scope, False
        if isinstance(child, ast.ClassDef):
            return child, fn, local, True
        if isinstance(child, ast.Import | ast.ImportFrom):
            bindings = dict(import_bindings(self.module, child))
            for target in bindings.values():
                root = target.split(".")[0]
                if root in {"celery", "errands"}:
                    self.project.imported.add(Framework(root))
            if isinstance(local, ChainMap):
                local.maps[0].update(bindings)
        elif not self.record:
            pass
        elif isinstance(child, ast.Call):
            self.project.sites.append(Site(self.module, child, fn))
        elif isinstance(child, ast.Assign) and any(
            isinstance(t, ast.Attribute | ast.Subscript) for t in child.targets
        ):
            self.project.assignments.append((self.module, child, fn))
        return child, fn, local, in_class
