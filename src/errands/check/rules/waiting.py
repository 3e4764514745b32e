"""Waiting: a task must never block on another job's result (ERR3xx)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from errands.check.context import Context
from errands.check.discovery import app_of
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import FunctionInfo
from errands.check.scope import Binding, Scope, body_nodes

__all__ = ["POLL_IN_TASK", "RULES", "WAIT_IN_TASK", "check"]

WAIT_IN_TASK = Rule(
    code="ERR301",
    name="wait-inside-task",
    family="waiting",
    summary="A task waits for another job's result: `.get()`, `.wait()`, `.join()` on a "
    "result, directly or through a helper function.",
    fix="chain the work instead: `chain(first.s(x), second.partial())`, or a `chord` for fan-in",
    severity=Severity.ERROR,
    frameworks=frozenset(Framework),
    why="""
A task that waits holds a worker slot while doing nothing. When every slot is held by a task
waiting for a job that sits in the queue behind it, the workers deadlock: nothing fails, nothing
moves. Celery raises on `.get()` inside a task unless `disable_sync_subtasks=False` or
`allow_join_result()` turns the guard off; errands always raises. Express the dependency as a
workflow (chain, group, chord) so the next step is enqueued when the first one finishes.
""",
    bad="""
@app.task
def build_report(account_id):
    rows = fetch_rows.delay(account_id).get(timeout=60)   # ERR301
    return render(rows)
""",
    good="""
@app.task
def render_report(rows):
    return render(rows)

def build_report(account_id):
    return chain(fetch_rows.s(account_id), render_report.s()).delay()
""",
    notes=(
        "A call is a wait when its receiver is known to be a result: bound from `.delay()`, "
        "`.apply_async()`, `send_task()`, `AsyncResult(...)`, a called `group`/`chain`/"
        "`chord`, or an element of a list of those; or when `.get()` is given "
        "`propagate=` or `disable_sync_subtasks=`.",
        "Helpers are followed: a task that calls a function of the scanned tree that waits "
        "is reported at the call.",
    ),
)

POLL_IN_TASK = Rule(
    code="ERR302",
    name="poll-inside-task",
    family="waiting",
    summary="A task loops on `.ready()`, `.successful()`, `.failed()` or `.state` of another "
    "job's result.",
    fix="chain the work, or let the other job enqueue its follow-up when it finishes",
    severity=Severity.ERROR,
    frameworks=frozenset(Framework),
    why="""
Polling is waiting with extra steps: the task holds its worker slot for as long as the other job
takes, adds a broker round trip per turn of the loop, and deadlocks the same way `.get()` does
when the job it polls is queued behind it.
""",
    bad="""
@app.task
def export(project_id):
    job = render_pdf.delay(project_id)
    while not job.ready():              # ERR302
        time.sleep(1)
    upload(job.result)
""",
    good="""
@app.task
def upload_pdf(pdf_key):
    upload(pdf_key)

def export(project_id):
    (render_pdf.s(project_id) | upload_pdf.s()).delay()
""",
)

RULES = (WAIT_IN_TASK, POLL_IN_TASK)

_RESULT_METHODS = frozenset(
    {"delay", "apply_async", "send_task", "adelay", "aapply_async", "asend_task"}
)
_RESULT_CLASSES = frozenset({"AsyncResult", "GroupResult", "ResultSet"})
_WORKFLOWS = frozenset({"group", "chain", "chord"})
_WAIT_METHODS = frozenset({"get", "wait", "join", "join_native", "collect", "aget"})
_WAIT_ONLY_KEYWORDS = frozenset({"propagate", "disable_sync_subtasks", "follow_parents"})
_POLL_METHODS = frozenset({"ready", "successful", "failed"})
_POLL_ATTRIBUTES = frozenset({"state", "status"})


@dataclass(frozen=True, slots=True)
class _Wait:
    node: ast.AST
    rule: Rule
    what: str


def check(ctx: Context) -> Iterator[Finding]:
    """Report every wait and poll inside a task body, and calls to helpers that wait."""
    analyser = _Analyser(ctx)
    for task in ctx.tasks():
        if task.info is None:
            continue
        for wait in analyser.waits(task.info, direct_only=False):
            yield ctx.finding(
                wait.rule,
                task.module,
                wait.node,
                f"task `{task.node.name}` {wait.what}: a worker slot is held while it waits",
            )


class _Analyser:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._helpers: dict[FunctionInfo, list[_Wait]] = {}

    def waits(self, info: FunctionInfo, *, direct_only: bool) -> list[_Wait]:
        scope = self.ctx.scope(info)
        found: list[_Wait] = []
        for node in body_nodes(info.node):
            if isinstance(node, ast.Call):
                wait = self._wait_call(node, scope)
                if wait is not None:
                    found.append(wait)
                elif not direct_only:
                    found.extend(self._helper_call(info, node))
            elif isinstance(node, ast.While | ast.For | ast.AsyncFor):
                poll = self._poll_loop(node, scope)
                if poll is not None:
                    found.append(poll)
        return found

    def _wait_call(self, call: ast.Call, scope: Scope) -> _Wait | None:
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr not in _WAIT_METHODS:
            return None
        shown = f"{_short(func.value)}.{func.attr}()"
        if self._is_result(func.value, scope):
            return _Wait(call, WAIT_IN_TASK, f"waits for a result with `{shown}`")
        keywords = {kw.arg for kw in call.keywords}
        if func.attr == "get" and not call.args and keywords & _WAIT_ONLY_KEYWORDS:
            return _Wait(call, WAIT_IN_TASK, f"waits for a result with `{shown}`")
        return None

    def _poll_loop(self, loop: ast.While | ast.For | ast.AsyncFor, scope: Scope) -> _Wait | None:
        # A `for` loop that checks each result once is not waiting; one that sleeps between
        # checks is, and a `while` loop on a result's state always is.
        if not isinstance(loop, ast.While) and not any(
            isinstance(n, ast.Call) and _call_name(n.func) == "sleep" for n in body_nodes(loop)
        ):
            return None
        for node in body_nodes(loop) if not isinstance(loop, ast.While) else _loop_nodes(loop):
            target: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in _POLL_METHODS:
                    target = node.func.value
            elif isinstance(node, ast.Attribute) and node.attr in _POLL_ATTRIBUTES:
                target = node.value
            if target is not None and self._is_result(target, scope):
                what = ast.unparse(node.func if isinstance(node, ast.Call) else node)
                return _Wait(loop, POLL_IN_TASK, f"polls `{_short_text(what)}` in a loop")
        return None

    def _helper_call(self, info: FunctionInfo, call: ast.Call) -> list[_Wait]:
        project = self.ctx.project
        helper = project.function_def(project.resolve(info.module, call.func, info.local))
        if helper is None or helper.task is not None or helper is info:
            return []
        waits = self._helper_waits(helper)
        if not waits:
            return []
        first = waits[0]
        line = getattr(first.node, "lineno", 0)
        where = f"{helper.module.display}:{line}"
        what = f"calls `{helper.node.name}()`, which {first.what} ({where})"
        return [_Wait(call, first.rule, what)]

    def _helper_waits(self, helper: FunctionInfo, depth: int = 0) -> list[_Wait]:
        if helper in self._helpers:
            return self._helpers[helper]
        self._helpers[helper] = []  # breaks recursion between helpers
        found = self.waits(helper, direct_only=True)
        if not found and depth < 4:
            project = self.ctx.project
            for node in body_nodes(helper.node):
                if not isinstance(node, ast.Call):
                    continue
                inner = project.function_def(
                    project.resolve(helper.module, node.func, helper.local)
                )
                if (
                    inner is not None
                    and inner.task is None
                    and self._helper_waits(inner, depth + 1)
                ):
                    found = [_Wait(node, w.rule, w.what) for w in self._helper_waits(inner)][:1]
                    break
        self._helpers[helper] = found
        return found

    def _is_result(self, expr: ast.expr, scope: Scope, depth: int = 0) -> bool:  # noqa: PLR0911
        if depth > 5:
            return False
        if isinstance(expr, ast.Await):
            return self._is_result(expr.value, scope, depth + 1)
        if isinstance(expr, ast.Name):
            return scope.agree(expr.id, lambda b: self._result_binding(b, scope, depth)) is True
        if isinstance(expr, ast.Subscript):
            return self._is_results(expr.value, scope, depth + 1)
        if not isinstance(expr, ast.Call):
            return False
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr in _RESULT_METHODS:
            return True
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _RESULT_CLASSES:
            return True
        if isinstance(func, ast.Attribute) and func.attr == "result":
            found = app_of(self.ctx.project, scope.info.module, func.value, scope.info.local)
            return found is not None and found[0] is Framework.ERRANDS
        # `group(...)()`, `chord(header)(callback)`, `(a.s() | b.s())()` run a workflow.
        if isinstance(func, ast.Call):
            inner = func.func
            inner_name = (
                inner.attr if isinstance(inner, ast.Attribute) else getattr(inner, "id", "")
            )
            return inner_name in _WORKFLOWS
        return isinstance(func, ast.BinOp) and isinstance(func.op, ast.BitOr)

    def _is_results(self, expr: ast.expr, scope: Scope, depth: int) -> bool:
        """A list of results: ``[t.delay(x) for x in xs]`` or a name bound to one."""
        if isinstance(expr, ast.ListComp | ast.GeneratorExp):
            return self._is_result(expr.elt, scope, depth + 1)
        if isinstance(expr, ast.List | ast.Tuple):
            return bool(expr.elts) and all(self._is_result(e, scope, depth + 1) for e in expr.elts)
        if isinstance(expr, ast.Name):
            return (
                scope.agree(
                    expr.id,
                    lambda b: (
                        b.kind == "value"
                        and b.expr is not None
                        and self._is_results(b.expr, scope, depth + 1)
                    ),
                )
                is True
            )
        return False

    def _result_binding(self, binding: Binding, scope: Scope, depth: int) -> bool | None:
        if binding.expr is None:
            return None
        if binding.kind == "value":
            return self._is_result(binding.expr, scope, depth + 1) or None
        if binding.kind == "for":
            return self._is_results(binding.expr, scope, depth + 1) or None
        return None


def _loop_nodes(loop: ast.While) -> Iterator[ast.AST]:
    """The test and body of a while loop (a `while` test is where polling usually is)."""
    yield from ast.walk(loop.test)
    yield from body_nodes(loop)


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _short(expr: ast.expr) -> str:
    return _short_text(ast.unparse(expr))


def _short_text(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
