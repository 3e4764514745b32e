"""Bind: a task that uses its context must ask for it with ``bind=True`` (ERR6xx)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from errands.check.context import Context
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import TaskDef
from errands.check.scope import body_nodes

__all__ = ["CONTEXT_WITHOUT_BIND", "RULES", "check"]

CONTEXT_WITHOUT_BIND = Rule(
    code="ERR601",
    name="context-without-bind",
    family="bind",
    summary="`self.retry()` (or `ctx.retry()`, `self.request`, `ctx.attempt`...) in a task "
    "declared without `bind=True`.",
    fix="add `bind=True` to the task decorator and take the context as the first parameter",
    severity=Severity.ERROR,
    frameworks=frozenset(Framework),
    why="""
Without `bind=True` the first parameter is the first argument of the call, not the task: the
`self.retry()` meant to handle a transient error raises `AttributeError` instead (or, when
`self` is not a parameter at all, `NameError`), and the job fails on the first error it was
written to survive. The bug hides until the error path runs in production.
""",
    bad="""
@app.task(max_retries=5)
def charge(self, order_id):
    try:
        gateway.charge(order_id)
    except GatewayTimeout as exc:
        raise self.retry(exc=exc)          # ERR601: `self` is order_id's neighbour
""",
    good="""
@app.task(bind=True, max_retries=5)
def charge(self, order_id):
    try:
        gateway.charge(order_id)
    except GatewayTimeout as exc:
        raise self.retry(exc=exc)
""",
)

RULES = (CONTEXT_WITHOUT_BIND,)

_CONTEXT_ATTRIBUTES = frozenset(
    {"retry", "request", "update_state", "replace", "send_event", "AsyncResult", "backend"}
    | {"log", "attempt", "deadline", "is_cancelled", "retries_left", "max_retries"}
)


def check(ctx: Context) -> Iterator[Finding]:
    """Report the first use of each context attribute in every task that is not bound."""
    for task in ctx.tasks():
        # `bind` given as a non-literal, or hidden in `**options`, may well be True.
        unknown = ("bind" in task.options and not _false(task)) or not task.complete
        if task.bound or task.info is None or unknown:
            continue
        yield from _task(ctx, task)


def _false(task: TaskDef) -> bool:
    value = task.option("bind")
    return isinstance(value, ast.Constant) and value.value is False


def _task(ctx: Context, task: TaskDef) -> Iterator[Finding]:
    assert task.info is not None  # checked by the caller
    scope = ctx.scope(task.info)
    first = scope.first_param
    seen: set[str] = set()
    for node in body_nodes(task.node):
        if not (
            isinstance(node, ast.Attribute)
            and node.attr in _CONTEXT_ATTRIBUTES
            and isinstance(node.value, ast.Name)
            and node.value.id in {"self", "ctx"}
        ):
            continue
        name = node.value.id
        is_first = name == first
        is_free = not scope.is_local(name) and name not in task.module.imports
        is_free = is_free and name not in task.module.assigns
        if not (is_first or is_free) or node.attr in seen:
            continue
        seen.add(node.attr)
        where = "the first argument of the call" if is_first else "not defined"
        yield ctx.finding(
            CONTEXT_WITHOUT_BIND,
            task.module,
            node,
            f"task `{task.node.name}` uses `{name}.{node.attr}` but is not bound: `{name}` is "
            f"{where}, so this raises instead of reaching the task context",
        )
