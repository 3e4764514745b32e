"""What each local name of a function is bound to, so rules can tell what a name holds.

A rule trusts a name only when every binding of it in the function says the same thing: a name
bound once to ``Order.objects.get(...)`` holds an ORM instance; a name bound to that and to
``order.pk`` elsewhere holds something unknown, and the rule stays quiet.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from errands.check.project import FunctionInfo

__all__ = ["Binding", "Scope", "body_nodes"]

K = TypeVar("K")
BindingKind = Literal["value", "param", "for", "with", "unpack", "annotation", "function", "other"]


@dataclass(frozen=True, slots=True)
class Binding:
    """One binding of a local name.

    Attributes:
        kind: how it is bound: ``value`` (``x = expr``), ``param`` (a parameter; `expr` is its
            annotation), ``for`` (`expr` is the iterable), ``with`` (`expr` is the context
            manager), ``unpack`` (element `index` of `expr`), ``annotation`` (``x: T`` alone),
            ``function`` (a nested def), ``other`` (anything the checker does not follow).
        expr: the expression the kind refers to.
        index: for ``unpack``, the position in the unpacked value.
        first: for ``param``, True for the function's first parameter.
    """

    kind: BindingKind
    expr: ast.expr | None = None
    index: int = 0
    first: bool = False


def body_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node inside a function's body, without entering nested functions and classes."""
    stack: list[ast.AST] = list(reversed(getattr(node, "body", [])))
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(current))))


@dataclass(eq=False)
class Scope:
    """The local bindings of one function."""

    info: FunctionInfo
    bindings: dict[str, list[Binding]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        args = self.info.node.args
        positional = args.posonlyargs + args.args
        for i, arg in enumerate(positional + args.kwonlyargs):
            self._bind(arg.arg, Binding("param", arg.annotation, first=i == 0 and bool(positional)))
        for star in (args.vararg, args.kwarg):
            if star is not None:
                self._bind(star.arg, Binding("other"))
        for node in body_nodes(self.info.node):
            self._visit(node)

    @property
    def first_param(self) -> str | None:
        """The name of the first positional parameter, if any."""
        args = self.info.node.args
        positional = args.posonlyargs + args.args
        return positional[0].arg if positional else None

    def _bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def _target(self, target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self._bind(
                target.id, Binding("value", value) if value is not None else Binding("other")
            )
        elif isinstance(target, ast.Tuple | ast.List):
            for i, element in enumerate(target.elts):
                if not isinstance(element, ast.Name):
                    self._other(element)
                elif isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(
                    target.elts
                ):
                    self._bind(element.id, Binding("value", value.elts[i]))
                elif value is not None:
                    self._bind(element.id, Binding("unpack", value, index=i))
                else:
                    self._bind(element.id, Binding("other"))
        else:
            self._other(target)

    def _other(self, target: ast.expr) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self._bind(node.id, Binding("other"))

    def _loop(self, target: ast.expr, iterable: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._bind(target.id, Binding("for", iterable))
            return
        # `for i, obj in enumerate(items)`: obj is an element of items.
        if (
            isinstance(target, ast.Tuple)
            and len(target.elts) == 2
            and isinstance(target.elts[1], ast.Name)
            and isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "enumerate"
            and iterable.args
        ):
            self._other(target.elts[0])
            self._bind(target.elts[1].id, Binding("for", iterable.args[0]))
            return
        self._other(target)

    def _visit(self, node: ast.AST) -> None:  # noqa: C901, PLR0912 - one branch per statement kind
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._target(target, node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                self._bind(node.target.id, Binding("value", node.value))
            else:
                self._bind(node.target.id, Binding("annotation", node.annotation))
        elif isinstance(node, ast.AugAssign):
            self._other(node.target)
        elif isinstance(node, ast.NamedExpr):
            self._bind(node.target.id, Binding("value", node.value))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            self._loop(node.target, node.iter)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if isinstance(item.optional_vars, ast.Name):
                    self._bind(item.optional_vars.id, Binding("with", item.context_expr))
                elif item.optional_vars is not None:
                    self._other(item.optional_vars)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._bind(node.name, Binding("other"))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._bind(node.name, Binding("function"))
        elif isinstance(node, ast.ClassDef):
            self._bind(node.name, Binding("other"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                self._bind((alias.asname or alias.name).split(".")[0], Binding("other"))
        elif isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                self._bind(name, Binding("other"))
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            self._bind(node.name, Binding("other"))

    def agree(self, name: str, classify: Callable[[Binding], K | None]) -> K | None:
        """What every binding of `name` says, by `classify`; None if any disagrees or is unknown."""
        found = self.bindings.get(name)
        if not found:
            return None
        first = classify(found[0])
        if first is None:
            return None
        for binding in found[1:]:
            if classify(binding) != first:
                return None
        return first

    def is_local(self, name: str) -> bool:
        """Whether `name` is bound in this function (a parameter or a local)."""
        return name in self.bindings
