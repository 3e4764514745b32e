"""Broker: jobs belong in a broker built for them, results away from the queue (ERR1xx)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from urllib.parse import urlsplit

from errands.check.config import Setting
from errands.check.context import Context
from errands.check.evaluate import UNKNOWN, is_true, literal, string_prefix
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import TaskDef
from errands.check.scope import body_nodes

__all__ = ["DATABASE_BROKER", "RESULTS_ON_BROKER", "RULES", "check"]

DATABASE_BROKER = Rule(
    code="ERR101",
    name="database-broker",
    family="broker",
    summary="A database is used as the broker: `sqla+`, `db+`, `django://`, MongoDB "
    "(SQS, RabbitMQ and Redis are fine).",
    fix="use Redis (or RabbitMQ, SQS) as the broker and keep the database for data",
    severity=Severity.ERROR,
    frameworks=frozenset(Framework),
    why="""
A database broker polls a table: every idle worker runs a query every second, jobs are claimed
with row locks that contend under load, and the table and its indexes bloat with deleted rows.
The queue then slows the application that shares the database, exactly when it is busiest. The
SQLAlchemy and Django transports are marked experimental by kombu. errands needs Redis 7 (or
Valkey), and refuses anything else.
""",
    bad="""
app = Celery("shop", broker="sqla+postgresql://shop@db/shop")   # ERR101
""",
    good="""
app = Celery("shop", broker="redis://redis:6379/0")
""",
)

RESULTS_ON_BROKER = Rule(
    code="ERR102",
    name="heavy-results-on-broker",
    family="broker",
    summary="The result backend is the broker's own database and results are heavy (tasks "
    "return collections or documents) or never expire.",
    fix="set `ignore_result=True` where nobody reads results, `result_expires`, or a separate "
    "result database",
    severity=Severity.WARNING,
    frameworks=frozenset({Framework.CELERY}),
    why="""
When results live in the broker's Redis database, every stored result takes memory the queue
needs. Large results (rendered documents, lists of rows) that nobody reads fill it up; at
`maxmemory` Redis starts refusing writes (or evicting keys, queued jobs included), and the
queue stops. Keep results small and short-lived, or somewhere else.
""",
    bad="""
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_RESULT_BACKEND = CELERY_BROKER_URL            # ERR102

@shared_task
def export_rows(report_id):
    return [row.as_dict() for row in rows(report_id)]
""",
    good="""
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_RESULT_BACKEND = "redis://redis:6379/1"
CELERY_RESULT_EXPIRES = 3600

@shared_task
def export_rows(report_id):
    return store_export(rows(report_id))   # a storage key, not the rows
""",
)

RULES = (DATABASE_BROKER, RESULTS_ON_BROKER)

_DATABASE_SCHEMES = (
    "sqla+",
    "sqlalchemy+",
    "db+",
    "django:",
    "mongodb:",
    "mongodb+srv:",
    "couchdb:",
    "couchbase:",
)
# errands takes only Redis URLs; these are the database URLs a migrating project passes.
_ERRANDS_DATABASES = (*_DATABASE_SCHEMES, "postgres", "mysql", "sqlite", "oracle", "mssql")
_DATABASE_TRANSPORTS = frozenset({"sqla", "sqlalchemy", "django", "mongodb", "couchdb"})
_HEAVY_CALLS = frozenset(
    {"list", "dict", "sorted", "render_to_string", "dumps", "read", "json", "values_list"}
    | {"values", "serialize", "getvalue", "b64encode", "read_frame", "to_dict", "to_json"}
)


def check(ctx: Context) -> Iterator[Finding]:
    """Report database brokers and heavy results stored in the broker's database."""
    for key in ("broker_url", "broker_read_url", "broker_write_url"):
        for setting in ctx.config.get(key):
            prefix = string_prefix(setting.value, ctx.project.lookup(setting.module))
            if prefix is not None and prefix.lower().startswith(_DATABASE_SCHEMES):
                yield ctx.finding(
                    DATABASE_BROKER,
                    setting.module,
                    setting.value,
                    f"`{key}` points at a database (`{_scheme(prefix)}`): workers poll a table "
                    "and contend on row locks",
                )
    for setting in ctx.config.get("broker_transport"):
        value = literal(setting.value)
        if isinstance(value, str) and value.lower() in _DATABASE_TRANSPORTS:
            yield ctx.finding(
                DATABASE_BROKER,
                setting.module,
                setting.value,
                f"`broker_transport` is the {value!r} database transport",
            )
    for app in ctx.project.apps.values():
        if app.framework is not Framework.ERRANDS:
            continue
        url = app.call.args[0] if app.call.args else None
        for kw in app.call.keywords:
            if kw.arg == "broker_url":
                url = kw.value
        prefix = string_prefix(url, ctx.project.lookup(app.module))
        if url is not None and prefix is not None and prefix.lower().startswith(_ERRANDS_DATABASES):
            yield ctx.finding(
                DATABASE_BROKER,
                app.module,
                url,
                f"app `{app.name}` is given a database URL (`{_scheme(prefix)}`): errands "
                "needs Redis 7+ or Valkey",
                "give the app a `redis://` URL",
            )
    yield from _results(ctx)


def _scheme(prefix: str) -> str:
    return prefix.split("//", 1)[0] + "//" if "//" in prefix else prefix[:20]


def _results(ctx: Context) -> Iterator[Finding]:
    brokers = ctx.config.get("broker_url")
    if not brokers:
        return
    for backend in ctx.config.get("result_backend"):
        if not any(_same_database(ctx, backend, broker) for broker in brokers):
            continue
        reason = _heavy(ctx)
        if reason is not None:
            yield ctx.finding(
                RESULTS_ON_BROKER,
                backend.module,
                backend.value,
                f"results are stored in the broker's database and {reason}: they compete "
                "with queued jobs for the broker's memory",
            )


def _same_database(ctx: Context, backend: Setting, broker: Setting) -> bool:
    value = backend.value
    # `CELERY_RESULT_BACKEND = CELERY_BROKER_URL`, or both set from the same name.
    if isinstance(value, ast.Name):
        if isinstance(broker.node, ast.Assign | ast.AnnAssign):
            targets = broker.node.targets if isinstance(broker.node, ast.Assign) else []
            if isinstance(broker.node, ast.AnnAssign):
                targets = [broker.node.target]
            if any(isinstance(t, ast.Name) and t.id == value.id for t in targets):
                return True
        if isinstance(broker.value, ast.Name) and broker.value.id == value.id:
            return True
    left = literal(value, ctx.project.lookup(backend.module))
    right = literal(broker.value, ctx.project.lookup(broker.module))
    if not isinstance(left, str) or not isinstance(right, str):
        return False
    return _redis_database(left) is not None and _redis_database(left) == _redis_database(right)


def _redis_database(url: str) -> tuple[str, int, str] | None:
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "valkey"}:
        return None
    try:
        port = parts.port or 6379
    except ValueError:
        return None
    database = parts.path.strip("/") or "0"
    return (parts.hostname or "localhost", port, database)


def _heavy(ctx: Context) -> str | None:
    for setting in ctx.config.get("result_expires"):
        value = literal(setting.value)
        if value is not UNKNOWN and not value:
            return "never expire"
    if ctx.config.status("task_ignore_result") == "true":
        return None
    for task in ctx.tasks(Framework.CELERY):
        if is_true(task.option("ignore_result")):
            continue
        returned = _heavy_return(task)
        if returned is not None:
            return f"task `{task.node.name}` returns {returned}"
    return None


def _heavy_return(task: TaskDef) -> str | None:
    for node in body_nodes(task.node):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        value = node.value
        if isinstance(value, ast.ListComp | ast.DictComp | ast.SetComp):
            return "a collection built in a loop"
        if isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _HEAVY_CALLS:
                return f"the output of `{name}()`"
    return None
