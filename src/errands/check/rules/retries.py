"""Retries: finite, spread out with backoff and jitter, only for errors worth it (ERR4xx)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from errands.check.context import Context
from errands.check.evaluate import is_false, is_none, keyword
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import Option, TaskDef
from errands.check.scope import body_nodes

__all__ = [
    "BARE_EXCEPTION_FOREVER",
    "NO_BACKOFF",
    "NO_JITTER",
    "RETRY_CALL_UNBOUNDED",
    "RULES",
    "UNBOUNDED_RETRIES",
    "check",
]

BOTH = frozenset(Framework)

UNBOUNDED_RETRIES = Rule(
    code="ERR401",
    name="unbounded-retries",
    family="retries",
    summary="A task (or an errands app) sets `max_retries=None`: it retries forever.",
    fix="give a finite `max_retries` (3 to 10 is usual) and let the last failure go to the "
    "dead-letter set",
    severity=Severity.ERROR,
    frameworks=BOTH,
    why="""
A job that can never succeed (a deleted row, a revoked token, a bug) comes back forever: it
takes worker time on every attempt, its retries pile up behind real work, and nobody is told,
because it never fails. errands refuses `max_retries=None` when the task is registered, so this
code does not start after the move.
""",
    bad="""
@app.task(bind=True, max_retries=None)      # ERR401
def sync_invoice(self, invoice_id):
    try:
        push(invoice_id)
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=30)
""",
    good="""
@app.task(bind=True, max_retries=8, autoretry_for=(ConnectionError,),
          retry_backoff=True, retry_jitter=True)
def sync_invoice(self, invoice_id):
    push(invoice_id)
""",
)

RETRY_CALL_UNBOUNDED = Rule(
    code="ERR402",
    name="retry-call-unbounded",
    family="retries",
    summary="`self.retry(max_retries=None)`: this retry ignores every limit.",
    fix="drop `max_retries=None` from the call, so the task's finite limit applies",
    severity=Severity.ERROR,
    frameworks=frozenset({Framework.CELERY}),
    why="""
The `max_retries` given to `retry()` replaces the task's own limit for that attempt. `None`
there means the job is retried for as long as the error lasts, whatever the task declares; a
permanent error becomes an endless loop with no failure to alert on.
""",
    bad="""
@app.task(bind=True, max_retries=5)
def refresh_token(self, account_id):
    try:
        oauth.refresh(account_id)
    except RateLimited as exc:
        raise self.retry(exc=exc, max_retries=None)   # ERR402
""",
    good="""
@app.task(bind=True, max_retries=5)
def refresh_token(self, account_id):
    try:
        oauth.refresh(account_id)
    except RateLimited as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after)
""",
    notes=("errands' `ctx.retry()` takes no `max_retries`: the task's limit always applies.",),
)

NO_BACKOFF = Rule(
    code="ERR403",
    name="retry-without-backoff",
    family="retries",
    summary="`autoretry_for` without exponential backoff (Celery's `retry_backoff` is off by "
    "default; errands' is on unless `retry_backoff=False`).",
    fix="add `retry_backoff=True` (and keep `retry_jitter=True`)",
    severity=Severity.ERROR,
    frameworks=BOTH,
    why="""
When a dependency goes down, every job that calls it fails at once and, without backoff, is
retried on the same fixed delay (Celery's `default_retry_delay`, 3 minutes): a synchronized wave
that hits the dependency again just as it comes back, and again, until the retries run out.
Exponential backoff spreads the attempts over a growing window and gives the dependency room
to recover.
""",
    bad="""
@app.task(autoretry_for=(requests.RequestException,), max_retries=5)   # ERR403
def push_webhook(event_id):
    requests.post(url_for(event_id), json=payload(event_id), timeout=10)
""",
    good="""
@app.task(autoretry_for=(requests.RequestException,), max_retries=5,
          retry_backoff=True, retry_backoff_max=600, retry_jitter=True)
def push_webhook(event_id):
    requests.post(url_for(event_id), json=payload(event_id), timeout=10)
""",
)

NO_JITTER = Rule(
    code="ERR404",
    name="retry-without-jitter",
    family="retries",
    summary="Automatic retries with backoff but `retry_jitter=False`.",
    fix="remove `retry_jitter=False`: jitter is on by default",
    severity=Severity.ERROR,
    frameworks=BOTH,
    why="""
Backoff without jitter keeps the jobs that failed together in lockstep: they all wait 1 s, then
2 s, then 4 s, and hit the recovering service as one wave each time. Full jitter draws each delay
at random below the backoff, so the retries spread out.
""",
    bad="""
@app.task(autoretry_for=(DatabaseError,), retry_backoff=True,
          retry_jitter=False)                                  # ERR404
def rebuild_index(shard):
    ...
""",
    good="""
@app.task(autoretry_for=(DatabaseError,), retry_backoff=True)
def rebuild_index(shard):
    ...
""",
)

BARE_EXCEPTION_FOREVER = Rule(
    code="ERR405",
    name="retry-every-error-forever",
    family="retries",
    summary="A task retries on bare `Exception` with no limit: `autoretry_for=(Exception,)` or "
    "`except Exception: self.retry()` with `max_retries=None`.",
    fix="retry only the transient errors (timeouts, connection errors) and set a finite "
    "`max_retries`",
    severity=Severity.ERROR,
    frameworks=BOTH,
    why="""
Retrying every exception retries the bugs too: a `KeyError` or a `TypeError` fails the same way
on every attempt. With no limit, each such job loops forever and hides the bug from error
reporting. (errands retries any `Exception` by default, but at most `max_retries` times.)
""",
    bad="""
@app.task(autoretry_for=(Exception,), max_retries=None,    # ERR405
          retry_backoff=True)
def import_feed(feed_id):
    parse(download(feed_id))
""",
    good="""
@app.task(autoretry_for=(TimeoutError, ConnectionError), max_retries=6,
          retry_backoff=True)
def import_feed(feed_id):
    parse(download(feed_id))
""",
)

RULES = (
    UNBOUNDED_RETRIES,
    RETRY_CALL_UNBOUNDED,
    NO_BACKOFF,
    NO_JITTER,
    BARE_EXCEPTION_FOREVER,
)

_BARE = frozenset({"builtins.Exception", "builtins.BaseException"})


def check(ctx: Context) -> Iterator[Finding]:
    """Report the retry rules for every task, and ``max_retries=None`` on errands apps."""
    for task in ctx.tasks():
        yield from _task(ctx, task)
    for app in ctx.project.apps.values():
        if app.framework is Framework.ERRANDS:
            value = keyword(app.call, "max_retries")
            if value is not None and is_none(value.value):
                yield ctx.finding(
                    UNBOUNDED_RETRIES,
                    app.module,
                    value,
                    f"app `{app.name}` sets `max_retries=None` for all its tasks: errands "
                    "refuses it, and every job would retry forever",
                )


def _task(ctx: Context, task: TaskDef) -> Iterator[Finding]:
    name = task.node.name
    limit = _task_limit(task)
    unbounded = limit is not None and is_none(limit.value)
    bare_option = _bare_autoretry(ctx, task)
    bare_calls = _bare_handler_retries(ctx, task)
    reported_bare = False
    if bare_option is not None and unbounded:
        reported_bare = True
        yield ctx.finding(
            BARE_EXCEPTION_FOREVER,
            bare_option.module,
            bare_option.value,
            f"task `{name}` retries every exception, bugs included, with no limit",
        )
    for call, bare in _retry_calls(task, bare_calls):
        limit_kw = keyword(call, "max_retries")
        call_unbounded = limit_kw is not None and is_none(limit_kw.value)
        if bare and (call_unbounded or unbounded):
            reported_bare = True
            yield ctx.finding(
                BARE_EXCEPTION_FOREVER,
                task.module,
                call,
                f"task `{name}` retries on any exception, bugs included, with no limit",
            )
        elif call_unbounded:
            yield ctx.finding(
                RETRY_CALL_UNBOUNDED,
                task.module,
                call,
                f"`{ast.unparse(call.func)}(max_retries=None)` in task `{name}` retries forever",
            )
    if unbounded and not reported_bare and limit is not None:
        yield ctx.finding(
            UNBOUNDED_RETRIES,
            limit.module,
            limit.value,
            f"task `{name}` sets `max_retries=None`: a job that cannot succeed retries forever",
        )
    yield from _backoff(ctx, task)


def _task_limit(task: TaskDef) -> Option | None:
    limit = task.options.get("max_retries")
    if limit is not None:
        return limit
    # Celery's `retry_kwargs={"max_retries": None}` is the limit of automatic retries.
    kwargs = task.options.get("retry_kwargs")
    if kwargs is not None and isinstance(kwargs.value, ast.Dict):
        for key, value in zip(kwargs.value.keys, kwargs.value.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "max_retries":
                return Option(value, kwargs.module, key)
    return None


def _autoretry(task: TaskDef) -> tuple[Option | None, bool]:
    """The ``autoretry_for`` option and whether it retries anything at all."""
    option = task.options.get("autoretry_for")
    if option is None:
        # errands retries any Exception unless told otherwise; Celery retries nothing.
        return None, task.framework is Framework.ERRANDS
    value = option.value
    if isinstance(value, ast.Tuple | ast.List):
        return option, bool(value.elts)
    return option, True


def _bare_autoretry(ctx: Context, task: TaskDef) -> Option | None:
    option, retries = _autoretry(task)
    if not retries:
        return None
    if option is None:
        # errands' default: any Exception; point at the unbounded limit instead.
        return task.options.get("max_retries")
    value = option.value
    elements = value.elts if isinstance(value, ast.Tuple | ast.List) else [value]
    for element in elements:
        if ctx.project.resolve(option.module, element) in _BARE:
            return option
    return None


def _bare_handler_retries(ctx: Context, task: TaskDef) -> set[ast.Call]:
    """Retry calls inside ``except Exception`` / bare ``except`` handlers of the task."""
    found: set[ast.Call] = set()
    local = task.info.local if task.info else task.module.imports
    for node in body_nodes(task.node):
        if not isinstance(node, ast.ExceptHandler):
            continue
        caught = node.type
        types = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if caught is None or any(
            t is not None and ctx.project.resolve(task.module, t, local) in _BARE for t in types
        ):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    found.add(inner)
    return found


def _retry_calls(task: TaskDef, bare_calls: set[ast.Call]) -> Iterator[tuple[ast.Call, bool]]:
    receivers = {"self", "ctx", task.node.name}
    if task.context_param:
        receivers.add(task.context_param)
    for node in body_nodes(task.node):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "retry"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in receivers
        ):
            yield node, node in bare_calls


def _backoff(ctx: Context, task: TaskDef) -> Iterator[Finding]:
    option, retries = _autoretry(task)
    if not retries:
        return
    name = task.node.name
    backoff = task.options.get("retry_backoff")
    at = option or backoff
    if backoff is not None and is_false(backoff.value):
        off = True
    elif backoff is None and task.framework is Framework.CELERY:
        off = task.complete
    else:
        off = False
    if off and at is not None:
        what = "turns backoff off" if backoff is not None else "has no `retry_backoff`"
        yield ctx.finding(
            NO_BACKOFF,
            at.module,
            at.value,
            f"task `{name}` retries automatically but {what}: failed jobs retry in a "
            "synchronized wave on a fixed delay",
        )
        return
    jitter = task.options.get("retry_jitter")
    if jitter is not None and is_false(jitter.value):
        yield ctx.finding(
            NO_JITTER,
            jitter.module,
            jitter.value,
            f"task `{name}` retries with backoff but no jitter: jobs that failed together "
            "retry together",
        )
