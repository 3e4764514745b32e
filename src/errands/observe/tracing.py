"""`Tracing`: OpenTelemetry spans after the messaging conventions, carried in the job record.

Add it to the app, ``App(..., middleware=[Tracing()])``, in the producers and the workers alike
(they import the same app). Spans, their kinds and where they are made:

- ``send <queue>`` (PRODUCER), in the process that sends a job (`before_enqueue`): a child of
  the span active there, or, for a chain's next step that the supervisor sends, of the process
  span of the step before. Its context is the job's creation context: it travels in the job's
  headers (W3C ``traceparent``, by the global propagator) and every run of the job finds it.
  It ends as the job is handed to the broker client: it marks the send, it does not time the
  Redis call (a chord's callback goes out later, from Redis, and a refused send reaches no
  hook, so no span could be left open waiting for an answer).
- ``process <queue>`` (CONSUMER), around each run of the task, in the process that runs it: a
  child of the send span, linked to it too (the conventions ask for the link; the parent makes
  one trace of a job). Every retry's run is a child of the same send. A task that raises sets
  status ERROR with the exception recorded.
- ``settle <queue>`` (CLIENT), a child of the process span, made when that process has decided
  the outcome (``messaging.operation.name`` ack, retry, fail or cancel). The Redis write that
  follows is batched by the supervisor with other jobs' acks; it holds no job's context and
  never decodes records, so the span marks the decision rather than timing that write. The
  supervisor makes one (``dead``) for the deaths no run saw: a hard-limit kill, a lost child.

Every span has ``messaging.system`` "errands", ``messaging.destination.name`` (the queue),
``messaging.message.id`` (the job id), ``errands.task`` and, on the consumer side,
``errands.job.attempt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from errands import __version__
from errands.middleware import Execution, Middleware, Outgoing
from errands.observe.deaths import read_dead_job, unseen_by_a_run
from errands.observe.extras import require
from errands.result import ErrorInfo

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from errands.app import App
    from errands.context import TaskContext

__all__ = ["Tracing"]

_SYSTEM = "errands"  # messaging.system
# How each state of a run settles the job, as `messaging.operation.name` says it.
_SETTLES = {"succeeded": "ack", "retrying": "retry", "failed": "fail", "cancelled": "cancel"}


class Tracing(Middleware):
    """Spans for sending, running and settling jobs, linked across retries and workflows.

    Args:
        tracer_provider: where the spans go; the global one by default (``opentelemetry.trace.
            set_tracer_provider``, which may be set after this is built).

    Raises:
        ConfigurationError: OpenTelemetry is not installed (``pip install 'errands[otel]'``).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        require("opentelemetry.trace", "Tracing", "otel")
        from opentelemetry import trace  # noqa: PLC0415 - an optional extra

        self._tracer: Tracer = trace.get_tracer("errands", __version__, tracer_provider)
        self._running: dict[int, tuple[Span, object]] = {}  # id(ctx) -> its span, attach token
        self._app: App | None = None

    def bind(self, app: App) -> None:
        """Keep the app, to read a dead job's trace context in `on_dead`."""
        self._app = app

    # Sending ------------------------------------------------------------------------------------

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        """Start and end the job's send span; put its context in the job's headers."""
        from opentelemetry import propagate, trace  # noqa: PLC0415

        parent: Context | None = None  # the active span's, by default
        if not trace.get_current_span().get_span_context().is_valid and job.headers:
            parent = propagate.extract(_carrier(job.headers))  # a chain step's, from its run
        span = self._tracer.start_span(
            f"send {job.queue}",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes=_attributes(job.queue, job.id, job.task, "send", {
                "errands.job.priority": job.priority,
                "errands.job.delay_s": job.delay_s,
            }),
        )  # fmt: skip
        headers = dict(job.headers)
        propagate.inject(headers, context=trace.set_span_in_context(span))
        span.end()
        return msgspec.structs.replace(job, headers=headers)

    # Running ------------------------------------------------------------------------------------

    def before_execute(self, ctx: TaskContext) -> None:
        """Start the run's process span, a child of the job's send span, and make it current."""
        from opentelemetry import context, propagate, trace  # noqa: PLC0415

        created = propagate.extract(_carrier(ctx.headers))
        sent = trace.get_current_span(created).get_span_context()
        extra: dict[str, Any] = {"errands.job.attempt": ctx.attempt}
        if ctx.scheduled_for is not None:
            extra["errands.schedule.nominal_time"] = ctx.scheduled_for.isoformat()
        span = self._tracer.start_span(
            f"process {ctx.queue}",
            context=created,
            kind=trace.SpanKind.CONSUMER,
            links=[trace.Link(sent)] if sent.is_valid else None,
            attributes=_attributes(ctx.queue, ctx.id, ctx.task, "process", extra),
        )
        token = context.attach(trace.set_span_in_context(span))
        self._running[id(ctx)] = (span, token)

    def follow_up_headers(self, ctx: TaskContext) -> dict[str, Any]:
        """The run's process span context, for the chain's next step the supervisor sends."""
        from opentelemetry import propagate, trace  # noqa: PLC0415

        running = self._running.get(id(ctx))
        if running is None:
            return {}
        carrier: dict[str, Any] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(running[0]))
        return carrier

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        """Record how the run ended, settle it in a span, and end the process span."""
        from opentelemetry import context, trace  # noqa: PLC0415

        running = self._running.pop(id(ctx), None)
        if running is None:
            return
        span, token = running
        try:
            span.set_attribute("errands.job.outcome", execution.state)
            error = execution.error
            if execution.state in ("retrying", "failed") and error is not None:
                span.set_attribute("error.type", error.type)
                if execution.exception is not None:
                    span.record_exception(execution.exception)
                span.set_status(
                    trace.Status(trace.StatusCode.ERROR, f"{error.type}: {error.message}")
                )
            settle = _SETTLES[execution.state]
            self._tracer.start_span(
                f"settle {ctx.queue}",
                context=trace.set_span_in_context(span),
                kind=trace.SpanKind.CLIENT,
                attributes=_attributes(ctx.queue, ctx.id, ctx.task, "settle", {
                    "messaging.operation.name": settle,
                    "errands.job.attempt": ctx.attempt,
                }),
            ).end()  # fmt: skip
        finally:
            context.detach(token)  # type: ignore[arg-type]
            span.end()

    # The supervisor ------------------------------------------------------------------------------

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        """A settle span for a death no run saw (a kill, a lost child), in the job's trace."""
        if not unseen_by_a_run(error):
            return  # its run settled it in a span already
        from opentelemetry import propagate, trace  # noqa: PLC0415

        detail = read_dead_job(self._app, queue, job_id)
        created = propagate.extract(_carrier(detail.headers if detail else {}))
        sent = trace.get_current_span(created).get_span_context()
        extra: dict[str, Any] = {"messaging.operation.name": "dead"}
        if detail is not None:
            extra["errands.job.attempt"] = detail.attempts
        if error is not None:
            extra["error.type"] = error.type
        span = self._tracer.start_span(
            f"settle {queue}",
            context=created,
            kind=trace.SpanKind.CLIENT,
            links=[trace.Link(sent)] if sent.is_valid else None,
            attributes=_attributes(
                queue, job_id, (detail.task if detail else None) or "", "settle", extra
            ),
        )
        if error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{error.type}: {error.message}"))
        span.end()


def _carrier(headers: Mapping[str, Any]) -> dict[str, str]:
    """The headers a propagator reads: the string ones."""
    return {k: v for k, v in headers.items() if isinstance(v, str)}


def _attributes(
    queue: str, job_id: str, task: str, operation: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": _SYSTEM,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
        "errands.task": task,
    }
    attributes.update(extra)
    return attributes
