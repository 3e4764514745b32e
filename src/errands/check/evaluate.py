"""Reading values out of expressions without running them: literals, numbers, URL prefixes."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Final

__all__ = [
    "UNKNOWN",
    "Unknown",
    "call_name",
    "is_false",
    "is_none",
    "is_true",
    "keyword",
    "literal",
    "number",
    "string_prefix",
]


class Unknown:
    """The value of an expression the checker cannot know without running the code."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown()

# Name -> the expression bound to it; lets callers follow `LIMIT = 60 * 60` to a number.
Lookup = Callable[[str], ast.expr | None]

_TIMEDELTA_SECONDS = {
    "weeks": 604_800.0,
    "days": 86_400.0,
    "hours": 3_600.0,
    "minutes": 60.0,
    "seconds": 1.0,
    "milliseconds": 0.001,
}
_OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_ENV_CALLS = frozenset({"getenv", "get", "env", "get_env_str", "environ"})


def call_name(expr: ast.expr) -> str | None:
    """The last name of a called expression: ``foo`` for ``a.b.foo(...)`` and ``foo(...)``."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def keyword(call: ast.Call, name: str) -> ast.keyword | None:
    """The keyword argument `name` of `call`, if given."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw
    return None


def literal(expr: ast.expr | None, lookup: Lookup | None = None, depth: int = 0) -> object:
    """The value of a literal expression, or `UNKNOWN`.

    Handles constants, containers of literals, arithmetic on numbers, ``float("inf")``,
    ``math.inf``, ``timedelta(...)`` (as seconds) and, through `lookup`, module-level names.
    """
    if expr is None or depth > 8:
        return UNKNOWN
    value: object = UNKNOWN
    match expr:
        case ast.Constant(value=constant):
            value = constant
        case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
            items = [literal(e, lookup, depth + 1) for e in elts]
            value = UNKNOWN if any(i is UNKNOWN for i in items) else items
        case ast.Dict(keys=keys, values=values):
            value = _literal_dict(keys, values, lookup, depth)
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            inner = literal(operand, lookup, depth + 1)
            if isinstance(inner, int | float) and not isinstance(inner, bool):
                value = -inner
        case ast.BinOp(left=left, op=op, right=right):
            value = _arith(literal(left, lookup, depth + 1), op, literal(right, lookup, depth + 1))
        case ast.Name(id=name) if lookup is not None:
            bound = lookup(name)
            if bound is not None:
                value = literal(bound, lookup, depth + 1)
        case ast.Attribute(value=ast.Name(id="math" | "numpy" | "np"), attr="inf"):
            value = math.inf
        case ast.Call():
            value = _literal_call(expr, lookup, depth)
        case _:
            pass
    return value


def _literal_dict(
    keys: list[ast.expr | None], values: list[ast.expr], lookup: Lookup | None, depth: int
) -> object:
    result: dict[object, object] = {}
    for key, item in zip(keys, values, strict=True):
        if key is None:
            return UNKNOWN
        k = literal(key, lookup, depth + 1)
        if k is UNKNOWN or not isinstance(k, str | int | float | bool | None):
            return UNKNOWN
        result[k] = literal(item, lookup, depth + 1)
    return result


def _literal_call(call: ast.Call, lookup: Lookup | None, depth: int) -> object:
    name = call_name(call.func)
    if name == "float" and len(call.args) == 1:
        text = literal(call.args[0], lookup, depth + 1)
        if isinstance(text, str) and text.strip().lower() in {"inf", "infinity", "+inf"}:
            return math.inf
    if name == "timedelta" and not call.args:
        total = 0.0
        for kw in call.keywords:
            unit = _TIMEDELTA_SECONDS.get(kw.arg or "")
            amount = literal(kw.value, lookup, depth + 1)
            if unit is None or not isinstance(amount, int | float):
                return UNKNOWN
            total += unit * amount
        return total
    return UNKNOWN


def _arith(left: object, op: ast.operator, right: object) -> object:
    if isinstance(op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        return left + right
    apply = _OPERATORS.get(type(op))
    numbers = (int, float)
    if apply is None or not (isinstance(left, numbers) and isinstance(right, numbers)):
        return UNKNOWN
    # A huge power is not a setting anyone writes; refuse it rather than compute it.
    if isinstance(op, ast.Pow) and abs(right) >= 64:
        return UNKNOWN
    try:
        return apply(left, right)
    except ArithmeticError:
        return UNKNOWN


def number(expr: ast.expr | None, lookup: Lookup | None = None) -> float | None:
    """The numeric value of `expr` (seconds for a timedelta), or None when it is not known."""
    value = literal(expr, lookup)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def is_none(expr: ast.expr | None) -> bool:
    """True when `expr` is the literal ``None``."""
    return isinstance(expr, ast.Constant) and expr.value is None


def is_true(expr: ast.expr | None, lookup: Lookup | None = None) -> bool:
    """True when `expr` is a literal whose truth value is known to be true."""
    value = literal(expr, lookup)
    return value is not UNKNOWN and bool(value)


def is_false(expr: ast.expr | None, lookup: Lookup | None = None) -> bool:
    """True when `expr` is a literal whose truth value is known to be false."""
    value = literal(expr, lookup)
    return value is not UNKNOWN and not bool(value)


def string_prefix(
    expr: ast.expr | None, lookup: Lookup | None = None, depth: int = 0
) -> str | None:
    """The known beginning of a string expression (enough to read a URL's scheme), or None.

    Follows f-strings, ``+`` concatenation, ``%`` and ``.format`` templates, module-level names
    through `lookup`, and the default of ``os.environ.get(NAME, "default")``-style calls.
    """
    if expr is None or depth > 8:
        return None
    inner: ast.expr | None = None
    match expr:
        case ast.Constant(value=str() as text):
            return text
        case ast.JoinedStr(values=[ast.Constant(value=str() as head), *_]):
            return head
        case ast.BinOp(left=left, op=ast.Add() | ast.Mod()):
            inner = left
        case ast.Call(func=ast.Attribute(value=template, attr="format")):
            inner = template
        case ast.Name(id=name) if lookup is not None:
            inner = lookup(name)
        case ast.Call(func=func, args=[_, default]) if call_name(func) in _ENV_CALLS:
            inner = default
        case ast.Call(func=func, args=[_], keywords=[ast.keyword(arg="default", value=default)]):
            inner = default if call_name(func) in _ENV_CALLS else None
        case _:
            pass
    return None if inner is None else string_prefix(inner, lookup, depth + 1)
