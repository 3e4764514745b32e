"""Time limits: every task has a bound on how long it may run (ERR5xx)."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator

from errands.check.context import Context
from errands.check.evaluate import is_none, keyword, number
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import TaskDef

__all__ = ["NO_TIME_LIMIT", "RULES", "check"]

NO_TIME_LIMIT = Rule(
    code="ERR501",
    name="no-time-limit",
    family="time limits",
    summary="A task has neither a soft nor a hard time limit and no app-wide default is set "
    "(Celery), or a limit is infinite (errands).",
    fix="set `soft_time_limit` and `time_limit` on the task, or `task_soft_time_limit` and "
    "`task_time_limit` app-wide",
    severity=Severity.ERROR,
    frameworks=frozenset(Framework),
    why="""
A call that never returns (a socket with no timeout, a lock never released, an infinite loop on
bad input) holds its worker slot until someone restarts the worker; a few of them and the queue
stops. Celery sets no time limit by default. A soft limit raises inside the task so it can clean
up; the hard limit kills the process when even that does not work. errands gives every task
finite defaults (300 s soft, 360 s hard), so only an explicit infinite limit breaks this there.
""",
    bad="""
app = Celery("shop", broker="redis://localhost:6379/0")

@app.task                                   # ERR501
def generate_thumbnails(image_id):
    ...
""",
    good="""
app = Celery("shop", broker="redis://localhost:6379/0")
app.conf.task_soft_time_limit = 60
app.conf.task_time_limit = 90

@app.task(soft_time_limit=600, time_limit=660)   # this one is known to be slow
def generate_thumbnails(image_id):
    ...
""",
    notes=(
        "App-wide defaults are found in `app.conf`, `conf.update`, `Celery(...)` keywords, "
        "celeryconfig modules, Django settings (`CELERY_TASK_TIME_LIMIT`, "
        "`CELERYD_TASK_TIME_LIMIT`), and `--time-limit`/`--soft-time-limit` on a worker "
        "command line in a Procfile, compose file, unit file or shell script of the tree.",
    ),
)

RULES = (NO_TIME_LIMIT,)

_LIMITS = ("soft_time_limit", "time_limit")
_APP_LIMITS = ("task_soft_time_limit", "task_time_limit")


def check(ctx: Context) -> Iterator[Finding]:
    """Report Celery tasks with no limit anywhere, and infinite limits on errands tasks."""
    # When the configuration is not in the tree, a default may be set there: say nothing.
    app_wide = _app_wide_limit(ctx) or not ctx.config.visible
    for task in ctx.tasks():
        if task.framework is Framework.CELERY:
            if not app_wide and task.complete and not _has_limit(task):
                yield ctx.finding(
                    NO_TIME_LIMIT,
                    task.module,
                    task.node,
                    f"task `{task.node.name}` has no time limit and the app sets no default: "
                    "a call that hangs holds a worker slot forever",
                )
        else:
            yield from _infinite_options(ctx, task)
    for app in ctx.project.apps.values():
        if app.framework is not Framework.ERRANDS:
            continue
        for key in _LIMITS:
            kw = keyword(app.call, key)
            if kw is not None and _infinite(kw.value):
                yield ctx.finding(
                    NO_TIME_LIMIT,
                    app.module,
                    kw.value,
                    f"app `{app.name}` makes `{key}` infinite for every task that does not "
                    "set its own",
                    "give the app a finite default and raise it only on the tasks that need it",
                )


def _app_wide_limit(ctx: Context) -> bool:
    if any(ctx.config.status(key) in {"true", "unknown"} for key in _APP_LIMITS):
        return True
    # Annotations can set limits in ways a static reader cannot follow: assume they do.
    if ctx.config.get("task_annotations"):
        return True
    return any(
        "--time-limit" in line.text or "--soft-time-limit" in line.text
        for line in ctx.project.deploy_lines
    )


def _has_limit(task: TaskDef) -> bool:
    for key in _LIMITS:
        value = task.option(key)
        if value is not None and not is_none(value):
            return True
    return False


def _infinite(value: ast.expr) -> bool:
    seconds = number(value)
    return seconds is not None and math.isinf(seconds)


def _infinite_options(ctx: Context, task: TaskDef) -> Iterator[Finding]:
    for key in _LIMITS:
        option = task.options.get(key)
        if option is not None and _infinite(option.value):
            yield ctx.finding(
                NO_TIME_LIMIT,
                option.module,
                option.value,
                f"task `{task.node.name}` sets an infinite `{key}`: a job that hangs is never "
                "stopped",
                "give the task a finite limit, as long as its slowest honest run plus a margin",
            )
