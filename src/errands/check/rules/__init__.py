"""The rules, one module per family, and the registry that selects them by code."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from errands.check.context import Context
from errands.check.model import Finding, Rule
from errands.check.rules import (
    arguments,
    bind,
    broker,
    idempotency,
    limits,
    periodic,
    queues,
    retries,
    waiting,
)

__all__ = ["CHECKS", "RULES", "UnknownRuleError", "get_rule", "select_codes"]

Check = Callable[[Context], Iterator[Finding]]

_FAMILIES = (broker, arguments, waiting, retries, limits, bind, queues, idempotency, periodic)

RULES: tuple[Rule, ...] = tuple(rule for family in _FAMILIES for rule in family.RULES)
"""Every rule, in code order."""

CHECKS: tuple[Check, ...] = tuple(family.check for family in _FAMILIES)
"""One check function per family; each yields the findings of its family's rules."""

_BY_CODE = {rule.code: rule for rule in RULES}
_BY_NAME = {rule.name: rule for rule in RULES}


class UnknownRuleError(ValueError):
    """A rule code, prefix or name that matches no rule."""


def get_rule(code: str) -> Rule:
    """The rule with `code` (``ERR301``) or name (``wait-inside-task``), any case."""
    rule = _BY_CODE.get(code.strip().upper()) or _BY_NAME.get(code.strip().lower())
    if rule is None:
        raise UnknownRuleError(
            f"unknown rule {code!r}: the codes are {', '.join(_BY_CODE)} "
            "(see `errands check --explain CODE`)"
        )
    return rule


def _matching(selector: str) -> set[str]:
    token = selector.strip()
    if token.lower() in {"all", "err"}:
        return set(_BY_CODE)
    by_name = _BY_NAME.get(token.lower())
    if by_name is not None:
        return {by_name.code}
    family = {r.code for r in RULES if r.family == token.lower()}
    if family:
        return family
    codes = {code for code in _BY_CODE if code.startswith(token.upper())}
    if not codes:
        raise UnknownRuleError(
            f"unknown rule {token!r}: give a code (ERR301), a prefix (ERR3), a rule name "
            f"or a family; the codes are {', '.join(_BY_CODE)}"
        )
    return codes


def select_codes(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> frozenset[str]:
    """The codes to run: all (or those `select` matches), minus those `ignore` matches.

    Selectors are codes (``ERR301``), prefixes (``ERR3``), rule names or family names, and may
    be comma-separated. Raises `UnknownRuleError` for a selector that matches nothing.
    """
    chosen: set[str] = set()
    selected = [t for s in select for t in s.split(",") if t.strip()]
    for token in selected:
        chosen |= _matching(token)
    if not selected:
        chosen = set(_BY_CODE)
    for token in (t for s in ignore for t in s.split(",") if t.strip()):
        chosen -= _matching(token)
    return frozenset(chosen)
