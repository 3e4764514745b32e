"""Tracing on the memory broker: send, process and settle spans, and what links them.

Each test gives the app a `Tracing` on a tracer provider of its own, exporting to the SDK's
in-memory exporter, sends jobs, runs them with `run_jobs`, and reads the finished spans.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from errands import App, ConfigurationError, Retry, TaskContext, chain, chord
from errands.observe.tracing import Tracing
from errands.result import ErrorInfo
from errands.schedule.scheduler import Scheduler
from errands.testing import ManualClock, MemoryBroker, run_jobs


class Spans:
    """The spans a test's provider finished, found by operation."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def all(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def named(self, operation: str, job_id: str | None = None) -> list[ReadableSpan]:
        found = [
            s
            for s in self.all()
            if s.attributes is not None
            and s.attributes.get("messaging.operation.type") == operation
            and (job_id is None or s.attributes.get("messaging.message.id") == job_id)
        ]
        return sorted(found, key=lambda s: s.start_time or 0)

    def one(self, operation: str, job_id: str) -> ReadableSpan:
        [span] = self.named(operation, job_id)
        return span


@pytest.fixture
def spans() -> Iterator[Spans]:
    recorded = Spans()
    yield recorded
    recorded.provider.shutdown()


@pytest.fixture
def app(spans: Spans) -> App:
    return App(broker=MemoryBroker(), middleware=[Tracing(spans.provider)])


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _linked(span: ReadableSpan) -> set[int]:
    return {link.context.span_id for link in span.links}


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    span_id: int = span.context.span_id
    return span_id


def test_a_run_is_a_child_of_its_send_with_the_messaging_attributes(app: App, spans: Spans) -> None:
    @app.task(name="add", queue="maths")
    def add(x: int, y: int) -> int:
        return x + y

    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        sent = add.delay(1, 2)
    assert run_jobs(app) == 1

    send = spans.one("send", sent.id)
    process = spans.one("process", sent.id)
    settle = spans.one("settle", sent.id)
    assert send.name == "send maths"
    assert send.kind is SpanKind.PRODUCER
    assert _parent_id(send) == request.get_span_context().span_id
    assert process.name == "process maths"
    assert process.kind is SpanKind.CONSUMER
    assert _parent_id(process) == _id(send)
    assert _linked(process) == {_id(send)}
    assert process.context is not None
    assert send.context is not None
    assert process.context.trace_id == send.context.trace_id
    assert (
        dict(process.attributes or {}).items()
        >= {
            "messaging.system": "errands",
            "messaging.operation.type": "process",
            "messaging.destination.name": "maths",
            "messaging.message.id": sent.id,
            "errands.task": "add",
            "errands.job.attempt": 1,
            "errands.job.outcome": "succeeded",
        }.items()
    )
    assert process.status.status_code is StatusCode.UNSET
    assert settle.kind is SpanKind.CLIENT
    assert _parent_id(settle) == _id(process)
    assert (settle.attributes or {})["messaging.operation.name"] == "ack"


def test_spans_made_inside_a_task_are_children_of_its_process_span(app: App, spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")

    @app.task(name="work")
    def work() -> None:
        with tracer.start_as_current_span("inside"):
            pass

    sent = work.delay()
    run_jobs(app)
    [inside] = [s for s in spans.all() if s.name == "inside"]
    assert _parent_id(inside) == _id(spans.one("process", sent.id))


def test_each_retry_is_a_child_of_the_one_send_and_errors_are_recorded(
    app: App, spans: Spans
) -> None:
    @app.task(name="flaky", bind=True, max_retries=2, retry_backoff=False)
    def flaky(ctx: TaskContext) -> int:
        if ctx.attempt < 3:
            raise Retry(countdown=0, exc=ValueError(f"attempt {ctx.attempt} failed"))
        return ctx.attempt

    sent = flaky.delay()
    assert run_jobs(app) == 3
    assert sent.get(timeout=0) == 3

    send = spans.one("send", sent.id)
    runs = spans.named("process", sent.id)
    assert [(r.attributes or {})["errands.job.attempt"] for r in runs] == [1, 2, 3]
    for run in runs:
        assert _parent_id(run) == _id(send)
        assert _linked(run) == {_id(send)}
    first, _, last = runs
    assert first.status.status_code is StatusCode.ERROR
    assert "ValueError: attempt 1 failed" in (first.status.description or "")
    assert (first.attributes or {})["error.type"] == "ValueError"
    assert [e.name for e in first.events] == ["exception"]
    assert last.status.status_code is StatusCode.UNSET
    settles = [(s.attributes or {})["messaging.operation.name"] for s in spans.named("settle")]
    assert settles == ["retry", "retry", "ack"]


def test_a_job_that_fails_for_good_settles_as_fail_with_its_exception(
    app: App, spans: Spans
) -> None:
    @app.task(name="broken", max_retries=0)
    def broken() -> None:
        raise KeyError("missing")

    sent = broken.delay()
    run_jobs(app)
    process = spans.one("process", sent.id)
    assert process.status.status_code is StatusCode.ERROR
    [event] = process.events
    assert (event.attributes or {})["exception.type"] == "KeyError"
    assert (spans.one("settle", sent.id).attributes or {})["messaging.operation.name"] == "fail"


def test_a_chain_step_is_sent_as_a_child_of_the_run_before_it(app: App, spans: Spans) -> None:
    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    result = chain(add.s(1, 2), add.partial(10), add.partial(100)).delay()
    assert run_jobs(app) == 3
    assert result.get(timeout=1) == 113

    first, second, third = (s.id for s in result.steps)
    assert _parent_id(spans.one("send", second)) == _id(spans.one("process", first))
    assert _parent_id(spans.one("process", second)) == _id(spans.one("send", second))
    assert _parent_id(spans.one("send", third)) == _id(spans.one("process", second))
    trace_ids = {s.context.trace_id for s in spans.all() if s.context is not None}
    assert len(trace_ids) == 1  # the whole chain is one trace


def test_a_chord_callback_runs_as_a_child_of_the_send_made_when_the_chord_started(
    app: App, spans: Spans
) -> None:
    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="total")
    def total(values: list[int]) -> int:
        return sum(values)

    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        result = chord([add.s(1, 1), add.s(2, 2)], total.partial()).delay()
    assert run_jobs(app) == 3
    assert result.get(timeout=1) == 6

    callback_send = spans.one("send", result.id)
    assert _parent_id(callback_send) == request.get_span_context().span_id
    callback_run = spans.one("process", result.id)
    assert _parent_id(callback_run) == _id(callback_send)
    assert _linked(callback_run) == {_id(callback_send)}
    for member in result.members.results:
        assert _parent_id(spans.one("send", member.id)) == request.get_span_context().span_id


def test_a_schedule_fire_carries_a_context_the_scheduler_created(spans: Spans) -> None:
    clock = ManualClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp())
    app = App(broker=MemoryBroker(clock=clock), middleware=[Tracing(spans.provider)])

    @app.periodic(every=timedelta(seconds=60), id="minutely", overlap="allow_all")
    @app.task(name="tick")
    def tick() -> None:
        pass

    scheduler = Scheduler(app, clock=clock)

    async def fire() -> None:
        await scheduler.reconcile()
        await scheduler.step()
        clock.advance(60)
        await scheduler.step()

    asyncio.run(fire())
    assert run_jobs(app) == 1

    [send] = spans.named("send")
    assert send.parent is None  # a trace of its own, begun by the scheduler's fire
    job_id = (send.attributes or {})["messaging.message.id"]
    assert str(job_id).startswith("minutely@")
    process = spans.one("process", str(job_id))
    assert _parent_id(process) == _id(send)
    nominal = (process.attributes or {})["errands.schedule.nominal_time"]
    assert str(nominal).startswith("2026-01-01T12:01")


def test_headers_carry_the_w3c_traceparent(app: App, spans: Spans) -> None:
    seen: list[dict[str, Any]] = []

    @app.task(name="look", bind=True)
    def look(ctx: TaskContext) -> None:
        seen.append(dict(ctx.headers))

    sent = look.delay()
    run_jobs(app)
    send = spans.one("send", sent.id)
    assert send.context is not None
    [headers] = seen
    version, trace_id, span_id, _flags = headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{send.context.trace_id:032x}",
        f"{send.context.span_id:016x}",
    )


def test_without_opentelemetry_tracing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'errands\[otel\]'"):
        Tracing()


def test_a_tracer_provider_that_fails_never_fails_a_job(spans: Spans) -> None:
    class Failing(InMemorySpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> Any:
            raise ConnectionError("the collector is down")

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Failing()))
    app = App(broker=MemoryBroker(), middleware=[Tracing(provider)])

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    sent = add.delay(2, 3)
    assert run_jobs(app) == 1
    assert sent.get(timeout=0) == 5
    provider.shutdown()
    assert trace.get_current_span().get_span_context().is_valid is False


def test_a_death_no_run_saw_settles_as_dead_in_the_jobs_trace(app: App, spans: Spans) -> None:
    @app.task(name="slow")
    def slow() -> None:
        pass

    sent = slow.delay()
    [tracing] = app.middleware.all
    assert isinstance(tracing, Tracing)
    # What the supervisor's hooks hear: a run's own failure (settled by that run already), then
    # a kill at the hard time limit, which no run saw.
    tracing.on_dead("default", sent.id, ErrorInfo("ValueError", "settled by its run"))
    assert spans.named("settle") == []
    tracing.on_dead("default", sent.id, ErrorInfo("errands.errors.TimeLimitExceeded", "killed"))

    send = spans.one("send", sent.id)
    dead = spans.one("settle", sent.id)
    assert _parent_id(dead) == _id(send)
    assert _linked(dead) == {_id(send)}
    assert dead.status.status_code is StatusCode.ERROR
    assert (
        dict(dead.attributes or {}).items()
        >= {
            "messaging.operation.name": "dead",
            "errands.task": "slow",
            "error.type": "errands.errors.TimeLimitExceeded",
        }.items()
    )


def test_an_async_task_runs_inside_its_process_span(app: App, spans: Spans) -> None:
    tracer = spans.provider.get_tracer("test")

    @app.task(name="fetch")
    async def fetch() -> str:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("inside"):
            await asyncio.sleep(0)
        return "ok"

    sent = fetch.delay()
    assert run_jobs(app) == 1
    [inside] = [s for s in spans.all() if s.name == "inside"]
    assert _parent_id(inside) == _id(spans.one("process", sent.id))
    assert (spans.one("settle", sent.id).attributes or {})["messaging.operation.name"] == "ack"


def test_an_exporter_that_hangs_never_slows_a_job() -> None:
    stuck = threading.Event()

    class Hanging(InMemorySpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> Any:
            stuck.wait(30)  # a collector that takes the connection and never answers
            return super().export(spans)

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Hanging(), schedule_delay_millis=1))
    plain = App(broker=MemoryBroker())
    traced = App(broker=MemoryBroker(), middleware=[Tracing(provider)])
    for app in (plain, traced):

        @app.task(name="add")
        def add(x: int, y: int) -> int:
            return x + y

    def per_job_s(app: App, count: int = 300) -> float:
        started = time.perf_counter()
        for n in range(count):
            app.tasks["add"].delay(n, 1)
        assert run_jobs(app) == count
        return (time.perf_counter() - started) / count

    try:
        per_job_s(traced, 10)  # the exporter's thread is stuck in its first export from here
        untraced, with_stuck_exporter = per_job_s(plain), per_job_s(traced)
    finally:
        stuck.set()
        provider.shutdown()
    # Spans queue up (and are dropped past the queue's bound) behind the stuck export: a job
    # pays for making its spans, never for waiting on the collector (that would be 30 s).
    assert with_stuck_exporter < untraced + 0.02
