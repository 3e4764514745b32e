"""Queues: slow work apart from fast work, and priorities only where they are honoured (ERR7xx)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from errands.check.context import Context
from errands.check.evaluate import UNKNOWN, keyword, literal, number, string_prefix
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import TaskDef

__all__ = ["IGNORED_PRIORITY", "LONG_ON_DEFAULT_QUEUE", "RULES", "check"]

LONG_S = 600.0
"""A task whose hard limit is at least this many seconds is long."""
SHORT_S = 360.0
"""A task whose hard limit is at most this (errands' default) is short."""

LONG_ON_DEFAULT_QUEUE = Rule(
    code="ERR701",
    name="long-task-on-default-queue",
    family="queues",
    summary="A task with a long time limit (10 minutes or more) shares the default queue with "
    "short tasks.",
    fix='route the long task to a queue of its own (`queue="slow"`) served by its own workers',
    severity=Severity.WARNING,
    frameworks=frozenset(Framework),
    why="""
Workers take jobs from a queue in order. When a burst of hour-long exports lands on the queue
that also carries password-reset emails, every worker slot fills with exports and the emails
wait behind them for an hour. A queue per latency class (and workers per queue) keeps the fast
path fast whatever the slow path is doing.
""",
    bad="""
@app.task(time_limit=60)
def send_password_reset(user_id): ...

@app.task(soft_time_limit=3500, time_limit=3600)     # ERR701
def export_account(account_id): ...
""",
    good="""
@app.task(time_limit=60)
def send_password_reset(user_id): ...

@app.task(queue="exports", soft_time_limit=3500, time_limit=3600)
def export_account(account_id): ...
""",
    notes=(
        "A task counts as long when its hard limit (or soft limit, if that is all it has) is "
        "at least 600 s, and as short at 360 s or less; the app-wide default applies to tasks "
        "that set neither. Celery routes (`task_routes`, `CELERY_TASK_ROUTES`) given as dict "
        "literals, with glob patterns, are followed; when they are code, or a call site "
        "passes `queue=`, the task is skipped.",
    ),
)

IGNORED_PRIORITY = Rule(
    code="ERR702",
    name="ignored-priority",
    family="queues",
    summary="A priority is set on a broker or queue that ignores it: RabbitMQ queues without "
    "`x-max-priority`, or SQS.",
    fix="declare priority queues (`task_queue_max_priority=10`), or use separate queues",
    severity=Severity.WARNING,
    frameworks=frozenset({Framework.CELERY}),
    why="""
RabbitMQ ignores message priorities unless the queue was declared with `x-max-priority`, and
SQS has no priorities at all. The code reads as if urgent jobs jump the line; in production they
wait behind everything else, and nobody notices until the backlog that priorities were meant to
handle. errands queues always honour priorities 0-9.
""",
    bad="""
app = Celery("alerts", broker="amqp://guest@rabbit//")

@app.task(priority=9)                    # ERR702
def page_on_call(incident_id): ...
""",
    good="""
app = Celery("alerts", broker="amqp://guest@rabbit//")
app.conf.task_queue_max_priority = 10
app.conf.task_default_priority = 5

@app.task(priority=9)
def page_on_call(incident_id): ...
""",
)

RULES = (LONG_ON_DEFAULT_QUEUE, IGNORED_PRIORITY)

_AMQP = ("amqp", "amqps", "pyamqp", "librabbitmq")
_SQS = ("sqs",)


def check(ctx: Context) -> Iterator[Finding]:
    """Report long tasks on a shared default queue, and priorities nobody honours."""
    routed = _routed_at_call_sites(ctx)
    for framework in Framework:
        yield from _long_on_default(ctx, framework, routed)
    yield from _priorities(ctx)


@dataclass(frozen=True, slots=True)
class _Placed:
    task: TaskDef
    queue: str
    limit: float | None


def _routed_at_call_sites(ctx: Context) -> set[TaskDef]:
    """Tasks that some call sends to a queue of its choosing: their queue is not static."""
    found: set[TaskDef] = set()
    for site, task in ctx.project.task_sites("apply_async", "signature", "set"):
        if keyword(site.node, "queue") is None:
            continue
        if task is not None:
            found.add(task)
            continue
        func = site.node.func
        assert isinstance(func, ast.Attribute)
        inner = func.value
        if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
            signed = ctx.project.task_at(site.module, inner.func.value, site.local)
            if signed is not None:
                found.add(signed)
    return found


def _long_on_default(ctx: Context, framework: Framework, routed: set[TaskDef]) -> Iterator[Finding]:
    placement = _placement(ctx, framework)
    if placement is None:
        return
    default, placed = placement
    on_default = [p for p in placed if p.queue == default and p.task not in routed]
    short = [p for p in on_default if p.limit is not None and p.limit <= SHORT_S]
    if not short:
        return
    for item in on_default:
        if item.limit is None or item.limit < LONG_S:
            continue
        example = short[0].task.node.name
        yield ctx.finding(
            LONG_ON_DEFAULT_QUEUE,
            item.task.module,
            item.task.node,
            f"task `{item.task.node.name}` may run {item.limit:g} s on the default queue "
            f"`{default}`, beside {len(short)} short task(s) such as `{example}`: a burst of it "
            "holds every worker slot",
        )


def _placement(ctx: Context, framework: Framework) -> tuple[str, list[_Placed]] | None:
    if framework is Framework.CELERY:
        default = _setting_literal(ctx, "task_default_queue", "celery")
        routes = _celery_routes(ctx)
        app_limit = _setting_literal(ctx, "task_time_limit", None)
        app_soft = _setting_literal(ctx, "task_soft_time_limit", None)
        if default is UNKNOWN or routes is None or app_limit is UNKNOWN or app_soft is UNKNOWN:
            return None
        fallback = _as_number(app_limit) or _as_number(app_soft)
    else:
        default, routes, fallback = "default", [], 360.0
        for app in ctx.project.apps.values():
            if app.framework is Framework.ERRANDS:
                queue_kw = keyword(app.call, "default_queue")
                limit_kw = keyword(app.call, "time_limit")
                default = literal(queue_kw.value) if queue_kw else default
                fallback = number(limit_kw.value) if limit_kw else fallback
    if not isinstance(default, str):
        return None
    placed: list[_Placed] = []
    for task in ctx.tasks(framework):
        queue = _queue_of(task, routes, default)
        if queue is not None:
            placed.append(_Placed(task, queue, _limit_of(ctx, task) or fallback))
    return default, placed


def _as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _setting_literal(ctx: Context, key: str, default: object) -> object:
    settings = ctx.config.get(key)
    if not settings:
        return default
    values = {repr(literal(s.value, ctx.project.lookup(s.module))) for s in settings}
    if len(values) != 1:
        return UNKNOWN
    return literal(settings[0].value, ctx.project.lookup(settings[0].module))


def _celery_routes(ctx: Context) -> list[tuple[str, str]] | None:
    """(pattern, queue) pairs from literal routes; None when routing is code."""
    pairs: list[tuple[str, str]] = []
    for setting in ctx.config.get("task_routes"):
        value = literal(setting.value, ctx.project.lookup(setting.module))
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            if not isinstance(table, dict):
                return None
            for pattern, route in table.items():
                queue = route.get("queue") if isinstance(route, dict) else route
                if not isinstance(pattern, str) or not isinstance(queue, str):
                    return None
                pairs.append((pattern, queue))
    return pairs


def _queue_of(task: TaskDef, routes: list[tuple[str, str]], default: str) -> str | None:
    option = task.option("queue")
    if option is not None:
        value = literal(option)
        return value if isinstance(value, str) else None
    for pattern, queue in routes:
        if fnmatchcase(task.name, pattern):
            return queue
    return default


def _limit_of(ctx: Context, task: TaskDef) -> float | None:
    for key in ("time_limit", "soft_time_limit"):
        option = task.options.get(key)
        if option is not None:
            seconds = number(option.value, ctx.project.lookup(option.module))
            if seconds is not None:
                return seconds
    return None


def _priorities(ctx: Context) -> Iterator[Finding]:
    schemes = set()
    for key in ("broker_url", "broker_write_url"):
        for setting in ctx.config.get(key):
            prefix = string_prefix(setting.value, ctx.project.lookup(setting.module))
            if prefix is None or "://" not in prefix:
                return
            schemes.add(prefix.split("://", 1)[0].lower())
    if not schemes:
        return
    if schemes <= set(_SQS):
        reason = "SQS has no message priorities"
    elif schemes <= set(_AMQP) and not _max_priority_declared(ctx):
        reason = "RabbitMQ ignores priorities on queues declared without `x-max-priority`"
    else:
        return
    for task in ctx.tasks(Framework.CELERY):
        option = task.options.get("priority")
        if option is not None:
            yield ctx.finding(
                IGNORED_PRIORITY,
                option.module,
                option.value,
                f"task `{task.node.name}` sets a priority that is ignored: {reason}",
            )
    for setting in ctx.config.get("task_default_priority"):
        yield ctx.finding(
            IGNORED_PRIORITY,
            setting.module,
            setting.value,
            f"`task_default_priority` is ignored: {reason}",
        )
    for site, called in ctx.project.task_sites("apply_async", "signature", "set"):
        priority = keyword(site.node, "priority")
        func = site.node.func
        unknown_ok = isinstance(func, ast.Attribute) and func.attr == "apply_async"
        known = called is not None and called.framework is Framework.CELERY
        if priority is not None and (known or (called is None and unknown_ok)):
            yield ctx.finding(
                IGNORED_PRIORITY, site.module, priority.value, f"this priority is ignored: {reason}"
            )


def _max_priority_declared(ctx: Context) -> bool:
    if ctx.config.status("task_queue_max_priority") in {"true", "unknown"}:
        return True
    for site in ctx.project.sites:
        if keyword(site.node, "max_priority") is not None:
            return True
        for kw in site.node.keywords:
            if kw.arg == "queue_arguments" and "x-max-priority" in ast.unparse(kw.value):
                return True
    return False
