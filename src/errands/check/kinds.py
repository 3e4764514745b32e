"""Telling, without running it, that an expression holds something that is not a JSON value.

Only what can be seen is reported: a name bound to ``Order.objects.get(...)``, a parameter
annotated ``user: User`` where ``User`` is a model of the tree, ``datetime.now()``, ``open(...)``,
a lambda. A name whose bindings disagree, or come from calls the checker cannot see into, is
unknown and never reported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from errands.check.project import FunctionInfo, Project
from errands.check.scope import Binding, Scope
from errands.check.source import Module

__all__ = ["Classifier", "Kind", "orm_kind"]

_QUERYSET_METHODS = frozenset(
    {
        "all",
        "annotate",
        "defer",
        "distinct",
        "exclude",
        "filter",
        "filter_by",
        "iterator",
        "none",
        "only",
        "order_by",
        "prefetch_related",
        "reverse",
        "select_for_update",
        "select_related",
        "using",
        "values",
        "values_list",
    }
)
_INSTANCE_METHODS = frozenset(
    {"create", "earliest", "first", "first_or_404", "get", "get_or_404", "last", "latest", "one"}
    | {"one_or_none", "scalar_one"}
)
_PAIR_METHODS = frozenset({"get_or_create", "update_or_create"})
_MANAGERS = frozenset({"objects", "_default_manager", "_base_manager", "query"})
_MODEL_BASES = frozenset(
    {"django.db.models.Model", "django.db.models.base.Model", "sqlalchemy.orm.DeclarativeBase"}
)
_JSON_BASES = frozenset(
    {"builtins." + n for n in ("dict", "list", "str", "int", "float", "tuple", "Exception")}
    | {"typing.TypedDict", "typing.NamedTuple", "enum.StrEnum", "enum.IntEnum", "enum.Enum"}
)


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of value that is not JSON, with the way to pass it instead."""

    label: str
    fix: str


DATETIME = Kind("a datetime", "pass `value.isoformat()` and parse it inside the task")
DECIMAL = Kind("a Decimal", "pass `str(value)` and rebuild the Decimal inside the task")
UUID = Kind("a UUID", "pass `str(value)`")
SET = Kind("a set", "pass `sorted(value)`, a list")
BYTES = Kind("bytes", "store the bytes and pass their key, or pass base64 text")
FILE = Kind("an open file", "pass the file's path or storage key and open it inside the task")
PATH = Kind("a Path", "pass `str(path)`")
LAMBDA = Kind("a lambda", "pass a task signature or the name of what to call")
FUNCTION = Kind("a function", "pass a task signature (`task.s()`) or a name to look up")
INSTANCE = Kind("an ORM instance", "pass its primary key and load the row inside the task")
QUERYSET = Kind(
    "a QuerySet", "pass a list of primary keys: `list(qs.values_list('pk', flat=True))`"
)
REQUEST = Kind("an HTTP request", "pass only the values the task needs (ids, strings)")
USER = Kind("a user instance", "pass `request.user.pk` and load the user inside the task")
UPLOAD = Kind("an uploaded file", "save the upload to storage and pass its key")
GENERATOR = Kind("a generator", "pass a list")
TASK_SELF = Kind("the task's own context", "pass the values the callee needs, such as the job id")
SELF = Kind("the instance (`self`)", "pass the fields the task needs, or the row's primary key")

_CALLS = {
    "datetime.datetime": DATETIME,
    "datetime.date": DATETIME,
    "datetime.time": DATETIME,
    "datetime.timedelta": DATETIME,
    "django.utils.timezone.now": DATETIME,
    "django.utils.timezone.localtime": DATETIME,
    "django.utils.timezone.localdate": DATETIME,
    "django.utils.timezone.make_aware": DATETIME,
    "decimal.Decimal": DECIMAL,
    "uuid.uuid1": UUID,
    "uuid.uuid4": UUID,
    "uuid.UUID": UUID,
    "builtins.set": SET,
    "builtins.frozenset": SET,
    "builtins.bytes": BYTES,
    "builtins.bytearray": BYTES,
    "base64.b64encode": BYTES,
    "builtins.open": FILE,
    "io.open": FILE,
    "codecs.open": FILE,
    "gzip.open": FILE,
    "tempfile.TemporaryFile": FILE,
    "tempfile.NamedTemporaryFile": FILE,
    "tempfile.SpooledTemporaryFile": FILE,
    "pathlib.Path": PATH,
    "pathlib.PurePath": PATH,
    "django.shortcuts.get_object_or_404": INSTANCE,
}
_DATETIME_CONSTRUCTORS = frozenset(
    {"now", "utcnow", "today", "fromtimestamp", "utcfromtimestamp", "fromisoformat", "strptime"}
    | {"combine"}
)
_DATETIME_METHODS = frozenset({"replace", "astimezone", "date", "time"})
_ANNOTATIONS = {
    "datetime.datetime": DATETIME,
    "datetime.date": DATETIME,
    "datetime.timedelta": DATETIME,
    "decimal.Decimal": DECIMAL,
    "uuid.UUID": UUID,
    "pathlib.Path": PATH,
    "typing.IO": FILE,
    "typing.TextIO": FILE,
    "typing.BinaryIO": FILE,
    "typing.Callable": FUNCTION,
    "collections.abc.Callable": FUNCTION,
    "django.http.HttpRequest": REQUEST,
    "django.db.models.QuerySet": QUERYSET,
    "django.db.models.query.QuerySet": QUERYSET,
}
_WEB_FRAMEWORKS = ("django", "flask", "rest_framework")


def orm_kind(expr: ast.expr) -> str | None:
    """``instance``, ``queryset`` or ``pair`` (from ``get_or_create``) for ORM calls, else None."""
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)):
        return None
    method, inner = expr.func.attr, expr.func.value
    if not _is_manager_or_queryset(inner):
        return None
    if method in _QUERYSET_METHODS:
        return "queryset"
    if method in _INSTANCE_METHODS:
        return "instance"
    return "pair" if method in _PAIR_METHODS else None


def _is_manager_or_queryset(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Attribute) and expr.attr in _MANAGERS:
        return True
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        # `session.query(Model)` starts a query too.
        return expr.func.attr == "query" or orm_kind(expr) == "queryset"
    return False


class Classifier:
    """Classifies expressions inside one function (or at module level when `info` is None)."""

    def __init__(
        self, project: Project, module: Module, info: FunctionInfo | None, scope: Scope | None
    ) -> None:
        self.project = project
        self.module = module
        self.info = info
        self.scope = scope
        self.local = info.local if info else module.imports
        self.web = any(v.startswith(_WEB_FRAMEWORKS) for v in self.local.values())

    def kind(self, expr: ast.expr, depth: int = 0) -> Kind | None:  # noqa: C901, PLR0911, PLR0912
        """The non-JSON kind of `expr`, or None when it is JSON or not known."""
        if depth > 6:
            return None
        if isinstance(expr, ast.Lambda):
            return LAMBDA
        if isinstance(expr, ast.Set | ast.SetComp):
            return SET
        if isinstance(expr, ast.GeneratorExp):
            return GENERATOR
        if isinstance(expr, ast.Constant) and isinstance(expr.value, bytes):
            return BYTES
        if isinstance(expr, ast.Name):
            return self._name(expr.id, depth)
        if isinstance(expr, ast.Attribute):
            return self._attribute(expr, depth)
        if isinstance(expr, ast.Subscript):
            if _is_files(expr.value, self):
                return UPLOAD
            return None
        if isinstance(expr, ast.BinOp):
            left, right = self.kind(expr.left, depth + 1), self.kind(expr.right, depth + 1)
            if DATETIME in (left, right) and isinstance(expr.op, ast.Add | ast.Sub):
                return DATETIME
            if left is PATH and isinstance(expr.op, ast.Div):
                return PATH
            return None
        if isinstance(expr, ast.Call):
            return self._call(expr, depth)
        return None

    def _call(self, call: ast.Call, depth: int) -> Kind | None:  # noqa: PLR0911 - one per kind
        orm = orm_kind(call)
        if orm == "instance":
            return INSTANCE
        if orm == "queryset":
            return QUERYSET
        func = call.func
        called = self.project.resolve(self.module, func, self.local)
        if called in _CALLS:
            return _CALLS[called]
        if isinstance(func, ast.Attribute):
            owner = self.kind(func.value, depth + 1)
            if owner is DATETIME and func.attr in _DATETIME_METHODS:
                return DATETIME
            if owner is PATH and func.attr == "open":
                return FILE
            if func.attr == "encode" and _is_str_encode(call):
                return BYTES
            if func.attr == "get" and _is_files(func.value, self):
                return UPLOAD
            base = self.project.resolve(self.module, func.value, self.local)
            if (
                base in {"datetime.datetime", "datetime.date"}
                and func.attr in _DATETIME_CONSTRUCTORS
            ):
                return DATETIME
        return self._class_instance(called)

    def _class_instance(  # noqa: PLR0911 - one return per kind of class
        self, qualname: str | None, depth: int = 0
    ) -> Kind | None:
        found = self.project.definition(qualname)
        node = found[0].defs.get(found[1]) if found else None
        if found is None or not isinstance(node, ast.ClassDef) or depth > 5:
            return None
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self.project.resolve(found[0], target) in {"dataclasses.dataclass", "attr.s"}:
                return Kind(f"an instance of `{node.name}`", "pass a dict of its fields")
        if not node.bases:
            return Kind(f"an instance of `{node.name}`", "pass a dict of its fields")
        for base in node.bases:
            resolved = self.project.resolve(found[0], base)
            if resolved in _MODEL_BASES or (resolved or "").endswith(".models.Model"):
                return INSTANCE
            if isinstance(base, ast.Attribute) and base.attr == "Model":
                return INSTANCE
            inherited = self._class_instance(resolved, depth + 1)
            if inherited is not None:
                return INSTANCE if inherited is INSTANCE else inherited
        return None

    def _attribute(self, expr: ast.Attribute, depth: int) -> Kind | None:
        # `request.user` in a Django view, and `self.request.user` in a class-based one.
        if expr.attr == "user" and self.web:
            owner = expr.value
            if isinstance(owner, ast.Name) and self._name(owner.id, depth + 1) is REQUEST:
                return USER
            if (
                isinstance(owner, ast.Attribute)
                and owner.attr == "request"
                and isinstance(owner.value, ast.Name)
                and owner.value.id == "self"
            ):
                return USER
        return None

    def _name(self, name: str, depth: int) -> Kind | None:
        scope = self.scope
        if scope is not None and scope.is_local(name):
            return scope.agree(name, lambda b: self._binding(name, b, depth))
        # A module-level function passed as a value.
        if name in self.module.defs and isinstance(
            self.module.defs[name], ast.FunctionDef | ast.AsyncFunctionDef
        ):
            return FUNCTION
        return None

    def _binding(self, name: str, binding: Binding, depth: int) -> Kind | None:  # noqa: PLR0911
        match binding.kind:
            case "value" if binding.expr is not None:
                return self.kind(binding.expr, depth + 1)
            case "param":
                return self._param(name, binding)
            case "annotation":
                return self._annotation(binding.expr)
            case "for" if binding.expr is not None:
                iterable = self.kind(binding.expr, depth + 1)
                return INSTANCE if iterable is QUERYSET else None
            case "with" if binding.expr is not None:
                return FILE if self.kind(binding.expr, depth + 1) is FILE else None
            case "unpack" if binding.expr is not None:
                pair = orm_kind(binding.expr) == "pair" and binding.index == 0
                return INSTANCE if pair else None
            case "function":
                return FUNCTION
        return None

    def _param(self, name: str, binding: Binding) -> Kind | None:
        info = self.info
        if info is not None and binding.first:
            if info.task is not None and info.task.bound:
                return TASK_SELF
            if info.is_method and name == "self" and not info.node.decorator_list:
                return SELF
        if binding.expr is not None:
            return self._annotation(binding.expr)
        if name == "request" and self.web and (info is None or info.task is None):
            return REQUEST
        return None

    def _annotation(self, annotation: ast.expr | None) -> Kind | None:  # noqa: PLR0911
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        # `X | None` and `Optional[X]` hold an X when they hold anything.
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            return self._annotation(annotation.left) or self._annotation(annotation.right)
        if isinstance(annotation, ast.Subscript):
            outer = self.project.resolve(self.module, annotation.value, self.local)
            if outer in {"typing.Optional", "typing.Union"}:
                return self._annotation(annotation.slice)
            return _ANNOTATIONS.get(outer or "")
        resolved = self.project.resolve(self.module, annotation, self.local)
        if resolved in _ANNOTATIONS:
            return _ANNOTATIONS[resolved]
        kind = self._class_instance(resolved)
        return kind if kind is INSTANCE else None


def _is_files(expr: ast.expr, classifier: Classifier) -> bool:
    """``request.FILES`` in a web view."""
    return (
        isinstance(expr, ast.Attribute)
        and expr.attr == "FILES"
        and isinstance(expr.value, ast.Name)
        and classifier._name(expr.value.id, 1) is REQUEST
    )


def _is_str_encode(call: ast.Call) -> bool:
    """``text.encode()`` or ``text.encode("utf-8")``; not ``encoder.encode(obj)``, a str."""
    if len(call.args) > 1 or any(kw.arg not in {"encoding", "errors"} for kw in call.keywords):
        return False
    return not call.args or (
        isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
    )
