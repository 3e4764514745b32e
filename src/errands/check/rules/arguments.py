"""Arguments: task calls must pass JSON values, and nothing may be unpickled (ERR2xx)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from errands.check.context import Context
from errands.check.evaluate import literal
from errands.check.kinds import Classifier
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import Site

__all__ = ["NON_JSON_ARGUMENT", "RULES", "UNSAFE_SERIALIZER", "check"]

BOTH = frozenset(Framework)

NON_JSON_ARGUMENT = Rule(
    code="ERR201",
    name="non-json-argument",
    family="arguments",
    summary="A task call passes a value that is not JSON: an ORM instance, a QuerySet, a "
    "datetime, `self`, an open file, a lambda or function, a set, bytes.",
    fix="pass plain values (ids, strings, numbers) and load the rest inside the task",
    severity=Severity.ERROR,
    frameworks=BOTH,
    why="""
A job's arguments travel through the broker and may wait there for hours. An ORM instance is
stale by the time the task runs (and with Celery's JSON serializer it does not encode at all;
with pickle it does, and drags the whole object graph along); a datetime comes back as a string
or a tagged object depending on the kombu version; a file, a lambda or `self` cannot be sent.
errands refuses every non-JSON argument when the job is enqueued, so code that passes one
fails there after the move.
""",
    bad="""
@app.task
def send_receipt(order):
    mail(order.email, render(order))

def checkout(request, pk):
    order = Order.objects.get(pk=pk)
    send_receipt.delay(order)          # ERR201: an ORM instance
""",
    good="""
@app.task
def send_receipt(order_id: int):
    order = Order.objects.get(pk=order_id)
    mail(order.email, render(order))

def checkout(request, pk):
    order = Order.objects.get(pk=pk)
    send_receipt.delay(order.pk)
""",
    notes=(
        "Only values whose type can be seen are reported: a name bound to an ORM query, "
        "`datetime.now()`, `open(...)`, a parameter annotated with a model class of the "
        "scanned tree, `request.user` in a view. A name bound to different things is unknown.",
        "Receivers are resolved through imports: `.delay`, `.apply_async`, `.s`, `.si` and "
        "`.signature` on a task of the scanned tree, and `send_task(...)` on any app.",
    ),
)

UNSAFE_SERIALIZER = Rule(
    code="ERR202",
    name="unsafe-serializer",
    family="arguments",
    summary="The `pickle` or `yaml` serializer is enabled (`task_serializer`, "
    "`result_serializer`, `accept_content`, `serializer=`).",
    fix="use the `json` serializer and accept only `application/json`",
    severity=Severity.ERROR,
    frameworks=frozenset({Framework.CELERY}),
    why="""
A worker that accepts pickle runs whatever code a message tells it to: anyone who can write to
the broker (a leaked Redis password, an open port, a compromised producer) owns every worker.
YAML loaders have had the same hole. Pickled arguments also tie the message to the exact class
layout of the producer, so a deploy can leave messages nobody can decode. errands sends JSON
only and never unpickles anything.
""",
    bad="""
app.conf.update(
    task_serializer="pickle",
    accept_content=["pickle", "json"],   # ERR202
)
""",
    good="""
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["application/json"],
)
""",
)

RULES = (NON_JSON_ARGUMENT, UNSAFE_SERIALIZER)

_UNSAFE = frozenset({"pickle", "yaml", "application/x-python-serialize", "application/x-yaml"})
_SERIALIZER_KEYS = frozenset(
    {"task_serializer", "result_serializer", "event_serializer"}
    | {"accept_content", "result_accept_content"}
)
# Celery 5.4 added the `*_on_commit` twins for Django: same arguments, sent after the commit.
_DELAY = frozenset({"delay", "delay_on_commit", "s", "si"})
_APPLY = frozenset({"apply_async", "apply_async_on_commit", "signature", "send_task"})
_CALLS = _DELAY | _APPLY


def check(ctx: Context) -> Iterator[Finding]:
    """Report ERR201 at every non-JSON argument and ERR202 at every unsafe serializer."""
    yield from _arguments(ctx)
    yield from _serializers(ctx)


def _arguments(ctx: Context) -> Iterator[Finding]:
    project = ctx.project
    for site, task in project.task_sites(*_CALLS):
        func = site.node.func
        assert isinstance(func, ast.Attribute)  # task_sites only yields attribute calls
        if task is None and not _unknown_receiver_ok(ctx, site, func):
            continue
        scope = ctx.scope(site.function) if site.function else None
        classifier = Classifier(project, site.module, site.function, scope)
        callee = _short(f"{ast.unparse(func.value)}.{func.attr}()")
        for value in _argument_values(site.node, func.attr):
            kind = classifier.kind(value)
            if kind is None:
                continue
            shown = _short(ast.unparse(value))
            yield ctx.finding(
                NON_JSON_ARGUMENT,
                site.module,
                value,
                f"`{callee}` is passed `{shown}`, {kind.label}: not a JSON value",
                kind.fix,
            )
        if func.attr in _APPLY:
            yield from _serializer_option(ctx, site)


def _unknown_receiver_ok(ctx: Context, site: Site, func: ast.Attribute) -> bool:
    """Trust ``x.delay()`` on a receiver the checker cannot resolve, when the tree has tasks."""
    if func.attr == "send_task":
        return True
    if func.attr not in _CALLS - {"s", "si", "signature"} or not ctx.project.tasks:
        return False
    resolved = ctx.project.resolve(site.module, func.value, site.local)
    # A receiver defined in the tree that is not a task has its own `.delay`.
    return ctx.project.definition(resolved) is None


def _argument_values(call: ast.Call, method: str) -> Iterator[ast.expr]:
    """The expressions that become job arguments (never the call options)."""
    if method in _DELAY:
        for arg in call.args:
            if not isinstance(arg, ast.Starred):
                yield arg
        for kw in call.keywords:
            if kw.arg is not None:
                yield kw.value
        return
    first = 1 if method == "send_task" else 0
    positional = call.args[first:]
    args = _keyword(call, "args") or (positional[0] if positional else None)
    kwargs = _keyword(call, "kwargs") or (positional[1] if len(positional) > 1 else None)
    if isinstance(args, ast.Tuple | ast.List):
        yield from (e for e in args.elts if not isinstance(e, ast.Starred))
    if isinstance(kwargs, ast.Dict):
        yield from kwargs.values
    elif isinstance(kwargs, ast.Call) and getattr(kwargs.func, "id", None) == "dict":
        yield from (kw.value for kw in kwargs.keywords if kw.arg is not None)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unsafe_in(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str) and v.lower() in _UNSAFE]


def _serializers(ctx: Context) -> Iterator[Finding]:
    for key in sorted(_SERIALIZER_KEYS):
        for setting in ctx.config.get(key):
            unsafe = _unsafe_in(literal(setting.value, ctx.project.lookup(setting.module)))
            if unsafe:
                yield ctx.finding(
                    UNSAFE_SERIALIZER,
                    setting.module,
                    setting.value,
                    f"`{key}` enables {', '.join(repr(u) for u in unsafe)}: a worker that "
                    "accepts it runs code that anyone with broker access sends",
                )
    for task in ctx.tasks(Framework.CELERY):
        option = task.options.get("serializer")
        if option is not None and _unsafe_in(literal(option.value)):
            yield ctx.finding(
                UNSAFE_SERIALIZER,
                option.module,
                option.value,
                f"task `{task.node.name}` uses the {literal(option.value)!r} serializer",
            )


def _serializer_option(ctx: Context, site: Site) -> Iterator[Finding]:
    value = _keyword(site.node, "serializer")
    if value is not None and _unsafe_in(literal(value)):
        yield ctx.finding(
            UNSAFE_SERIALIZER,
            site.module,
            value,
            f"this call sends its arguments with the {literal(value)!r} serializer",
        )
