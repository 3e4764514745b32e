"""Idempotency: a job may run more than once, so it must be safe to (ERR8xx)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from errands.check.context import Context
from errands.check.evaluate import keyword, literal
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import TaskDef
from errands.check.scope import body_nodes

__all__ = ["ACKS_EARLY", "NON_IDEMPOTENT_WRITE", "RULES", "check"]

ACKS_EARLY = Rule(
    code="ERR801",
    name="acks-early",
    family="idempotency",
    summary="A Celery task acknowledges its job before running it: `acks_late` is off on the "
    "task and app-wide.",
    fix="set `task_acks_late=True` app-wide (and make the tasks idempotent)",
    severity=Severity.ERROR,
    frameworks=frozenset({Framework.CELERY}),
    why="""
With early acknowledgement (Celery's default) the broker forgets the job the moment a worker
receives it. When that worker is killed mid-task (a deploy, the OOM killer, a lost node), the job
is gone without a trace: no retry, no failure, no dead letter. Late acknowledgement hands it to
another worker instead. errands always acknowledges after the job ran.
""",
    bad="""
app = Celery("billing", broker="redis://redis:6379/0")

@app.task                                # ERR801
def close_invoice(invoice_id): ...
""",
    good="""
app = Celery("billing", broker="redis://redis:6379/0")
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True

@app.task
def close_invoice(invoice_id): ...
""",
)

NON_IDEMPOTENT_WRITE = Rule(
    code="ERR802",
    name="non-idempotent-write",
    family="idempotency",
    summary="A task does a write that is not safe to repeat (an SQL `INSERT`, `.create(`, "
    "`send_mail(`, an HTTP `POST`) with no idempotency key or unique option.",
    fix="pass an idempotency key (`apply_async(idempotency_key=...)` in errands, the API's "
    "`Idempotency-Key`), or make the write an upsert",
    severity=Severity.WARNING,
    frameworks=frozenset(Framework),
    why="""
Every queue that does not lose jobs delivers some of them twice: a retry after a timeout whose
write had in fact landed, a worker killed after the write and before the ack. A task that inserts
a row, charges a card or sends an email then does it twice. Give the job an idempotency key, or
write the task so the second run finds the first one's work (an upsert, a unique constraint, a
check before the side effect).
""",
    bad="""
@app.task(autoretry_for=(SMTPException,))
def send_welcome(user_id):
    user = User.objects.get(pk=user_id)
    send_mail("Welcome", body(user), None, [user.email])   # ERR802
""",
    good="""
@app.task(autoretry_for=(SMTPException,))
def send_welcome(user_id):
    user = User.objects.get(pk=user_id)
    if user.welcomed_at is None:
        send_mail("Welcome", body(user), None, [user.email])
        User.objects.filter(pk=user_id).update(welcomed_at=now())

# errands: the same job id or key inside its window is enqueued once
send_welcome.apply_async(args=(user.pk,), idempotency_key=f"welcome:{user.pk}")
""",
    notes=(
        "A task is left alone when it has an `idempotency_key` option, when any call site "
        "passes `idempotency_key=` or `job_id=`, when its base is a lock such as "
        "`celery_once.QueueOnce` or `celery_singleton.Singleton`, and for writes that carry "
        "an idempotency key themselves (`Idempotency-Key` header, `idempotency_key=`).",
        "Guards it recognises: a write inside an `except` handler (recording the failure), "
        "`.create()` on a log (`error_log`, `auditlog_set`), a write after a lookup of the "
        "same model (`Memory.objects.filter(...)` then `Memory.objects.bulk_create(...)`) or "
        "after `full_clean()`/`validate_unique()`, and removal tasks that return when the row "
        "is gone and delete it. Other guards are not seen: it is a warning, for a person to "
        "read.",
    ),
)

RULES = (ACKS_EARLY, NON_IDEMPOTENT_WRITE)

_MAIL = frozenset({"send_mail", "send_mass_mail", "mail_admins", "mail_managers", "send_html_mail"})
_MESSAGE_CLASSES = frozenset({"EmailMessage", "EmailMultiAlternatives"})
_HTTP_MODULES = ("requests", "httpx", "aiohttp", "urllib3")
_HTTP_OWNER = re.compile(r"(session|client|http)", re.IGNORECASE)
_INSERT = re.compile(r"^\s*insert\s+(?!or\s+(ignore|replace))", re.IGNORECASE)
_UPSERT = re.compile(r"on\s+conflict|on\s+duplicate\s+key|insert\s+ignore", re.IGNORECASE)
_LOCK_BASES = ("Once", "Singleton", "Unique")
_MISSING = ("DoesNotExist", "NoResultFound")
_READS = frozenset({"filter", "exclude", "get", "exists", "first", "values_list", "in_bulk"})


def check(ctx: Context) -> Iterator[Finding]:
    """Report tasks that ack early (Celery) and tasks that write without an idempotency key."""
    yield from _acks(ctx)
    keyed = _keyed_at_call_sites(ctx)
    for task in ctx.tasks():
        if task not in keyed and not _has_unique_option(ctx, task):
            yield from _writes(ctx, task)


def _acks(ctx: Context) -> Iterator[Finding]:
    app_wide = ctx.config.status("task_acks_late")
    for task in ctx.tasks(Framework.CELERY):
        option = task.options.get("acks_late")
        if option is not None:
            value = literal(option.value)
            if isinstance(value, bool) and not value:
                yield ctx.finding(
                    ACKS_EARLY,
                    option.module,
                    option.value,
                    f"task `{task.node.name}` turns `acks_late` off: a worker that dies "
                    "mid-task loses its job",
                    "remove `acks_late=False` and make the task idempotent",
                )
        elif app_wide in {"absent", "false"} and task.complete and ctx.config.visible:
            yield ctx.finding(
                ACKS_EARLY,
                task.module,
                task.node,
                f"task `{task.node.name}` is acknowledged before it runs (`acks_late` is off): "
                "a worker that dies mid-task loses its job",
            )


def _keyed_at_call_sites(ctx: Context) -> set[TaskDef]:
    found: set[TaskDef] = set()
    for site, task in ctx.project.task_sites("apply_async", "signature", "set"):
        if task is not None and any(
            keyword(site.node, name) is not None for name in ("idempotency_key", "job_id")
        ):
            found.add(task)
    return found


def _has_unique_option(ctx: Context, task: TaskDef) -> bool:
    if any(key in task.options for key in ("idempotency_key", "once", "unique")):
        return True
    base = task.option("base")
    if base is not None:
        resolved = ctx.project.resolve(task.module, base) or ast.unparse(base)
        return any(marker in resolved.rsplit(".", 1)[-1] for marker in _LOCK_BASES)
    return False


def _is_removal(task: TaskDef) -> bool:
    """A task that exits when its row is gone and deletes it: a second run does nothing.

    ``try: obj = M.objects.get(pk=pk) except M.DoesNotExist: return`` then ``obj.delete()``;
    the audit record written before the delete is not written twice.
    """
    exits_when_missing = deletes = False
    for node in body_nodes(task.node):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = ast.unparse(node.type)
            if caught.endswith(_MISSING) and any(isinstance(s, ast.Return) for s in node.body):
                exits_when_missing = True
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            deletes = deletes or node.func.attr == "delete"
    return exits_when_missing and deletes


def _checked_first(task: TaskDef) -> tuple[dict[str, int], int]:
    """What the task looks up before it writes.

    Returns the first line each model is read on (``Model.objects.filter(...)``), and the first
    line where the task validates uniqueness (``full_clean()``, ``validate_unique()``), or 0.
    """
    reads: dict[str, int] = {}
    validated = 0
    for node in body_nodes(task.node):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        line = node.lineno
        if node.func.attr in {"full_clean", "validate_unique"}:
            validated = min(validated or line, line)
        owner = node.func.value
        if (
            node.func.attr in _READS
            and isinstance(owner, ast.Attribute)
            and owner.attr == "objects"
        ):
            model = ast.unparse(owner.value)
            reads[model] = min(reads.get(model, line), line)
    return reads, validated


def _guarded(write: ast.AST, checked: tuple[dict[str, int], int]) -> bool:
    """A write after a lookup of the same model, or after a uniqueness check, is a guarded one.

    ``for m in Memory.objects.filter(...): ...`` then ``Memory.objects.bulk_create(new)``
    creates only what the lookup did not find; ``obj.full_clean()`` refuses a duplicate.
    """
    reads, validated = checked
    line = getattr(write, "lineno", 0)
    if validated and validated < line:
        return True
    if isinstance(write, ast.Call) and isinstance(write.func, ast.Attribute):
        owner = write.func.value
        if isinstance(owner, ast.Attribute) and owner.attr == "objects":
            first = reads.get(ast.unparse(owner.value))
            return first is not None and first < line
    return False


def _writes(ctx: Context, task: TaskDef) -> Iterator[Finding]:
    if task.info is None or _is_removal(task):
        return
    writes: list[tuple[ast.AST, str]] = []
    # A write inside an `except` handler records the failure (an error log row, an alert): a
    # second copy of it is noise, not the duplicated side effect this rule is about.
    handled = {
        id(inner)
        for node in body_nodes(task.node)
        if isinstance(node, ast.ExceptHandler)
        for inner in ast.walk(node)
    }
    checked = _checked_first(task)
    for node in body_nodes(task.node):
        if id(node) in handled:
            continue
        what = _write(ctx, task, node)
        if what is None or _guarded(node, checked):
            continue
        writes.append((node, what))
    if not writes:
        return
    node, what = writes[0]
    more = f" (and {len(writes) - 1} more write(s))" if len(writes) > 1 else ""
    yield ctx.finding(
        NON_IDEMPOTENT_WRITE,
        task.module,
        node,
        f"task `{task.node.name}` {what} with no idempotency key{more}: a retried or "
        "redelivered job does it twice",
    )


def _write(ctx: Context, task: TaskDef, node: ast.AST) -> str | None:  # noqa: PLR0911
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
        if _INSERT.match(text) and not _UPSERT.search(text):
            return "runs an SQL INSERT"
        return None
    if not isinstance(node, ast.Call) or "idempotency" in ast.unparse(node).lower():
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name in _MAIL:
        return f"sends an email (`{name}()`)"
    if not isinstance(func, ast.Attribute):
        return None
    if name in {"create", "bulk_create"}:
        # Audit and error logs (`error_log.create`, `billinglog_set.create`) are records of
        # what happened, not the effect itself.
        owner = ast.unparse(func.value).rsplit(".", 1)[-1].lower()
        return None if "log" in owner else f"creates records (`{_short(func)}()`)"
    if name == "send" and _is_email_message(ctx, task, func.value):
        return "sends an email (`.send()`)"
    if name == "post" or (name == "request" and str(_first_arg(node)).upper() == "POST"):
        local = task.info.local if task.info else None
        resolved = ctx.project.resolve(task.module, func.value, local) or ""
        if resolved.startswith(_HTTP_MODULES) or _HTTP_OWNER.search(ast.unparse(func.value)):
            return f"sends an HTTP POST (`{_short(func)}()`)"
    return None


def _is_email_message(ctx: Context, task: TaskDef, expr: ast.expr) -> bool:
    def made_by_class(value: ast.expr | None) -> bool:
        if not isinstance(value, ast.Call):
            return False
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return name in _MESSAGE_CLASSES

    if made_by_class(expr):
        return True
    if isinstance(expr, ast.Name) and task.info is not None:
        scope = ctx.scope(task.info)
        return scope.agree(expr.id, lambda b: b.kind == "value" and made_by_class(b.expr)) is True
    return False


def _first_arg(call: ast.Call) -> object:
    return literal(call.args[0]) if call.args else None


def _short(func: ast.Attribute) -> str:
    text = ast.unparse(func)
    return text if len(text) <= 40 else "..." + text[-37:]
