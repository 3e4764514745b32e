"""Tracing across processes: the test sends, a real worker's child runs, the supervisor chains.

The test's spans go to an in-memory exporter; the worker's processes append theirs to a file
(`tests.integration.tracing_app`). The trace context travels in the job record only: the child's
process span must be a child of the test's send span, the next step of a chain, which the
supervisor sends, a child of the process span of the step before it in the child, and a job
killed at its hard time limit settled as dead by the supervisor in the job's trace.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from errands import JobFailed, chain
from tests.integration.tracing_app import build, read_spans
from tests.integration.workers import Workers, wait_until

APP = "tests.integration.tracing_app:app"


def _find(spans: list[dict[str, Any]], operation: str, job_id: str) -> dict[str, Any]:
    [span] = [
        s
        for s in spans
        if s["attributes"].get("messaging.operation.type") == operation
        and s["attributes"].get("messaging.message.id") == job_id
    ]
    return span


@pytest.mark.timeout(90)
def test_the_worker_continues_the_trace_the_producer_began(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = build(redis_url, namespace, provider)
    spans_file = tmp_path / "spans.jsonl"
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP)
    try:
        worker = farm.start("-c", "1", env={"ERRANDS_TEST_SPANS": str(spans_file)})
        [child] = worker.children()
        with provider.get_tracer("test").start_as_current_span("request"):
            single = app.tasks["add"].delay(1, 2)
            chained = chain(app.tasks["add"].s(1, 2), app.tasks["add"].partial(10)).delay()
            killed = app.tasks["hangs"].delay()
        assert single.get(timeout=20) == 3
        assert chained.get(timeout=20) == 13
        with pytest.raises(JobFailed, match="TimeLimitExceeded"):
            killed.get(timeout=20)
        first, second = chained.steps

        def settled(job_id: str) -> bool:
            ops = [
                s["attributes"].get("messaging.operation.type")
                for s in read_spans(spans_file)
                if s["attributes"].get("messaging.message.id") == job_id
            ]
            return "settle" in ops

        wait_until(
            lambda: all(map(settled, [single.id, second.id, killed.id])), 20, "the worker's spans"
        )
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0, worker.log()
    finally:
        farm.close()
        app.close()
        provider.shutdown()

    ours = {
        (s.attributes or {}).get("messaging.message.id"): s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get("messaging.operation.type") == "send"
    }
    theirs = read_spans(spans_file)

    sent = ours[single.id]
    assert sent.context is not None
    process = _find(theirs, "process", single.id)
    assert process["pid"] == child
    assert process["kind"] == "CONSUMER"
    assert process["parent_id"] == sent.context.span_id
    assert process["links"] == [sent.context.span_id]
    assert process["trace_id"] == sent.context.trace_id
    assert _find(theirs, "settle", single.id)["parent_id"] == process["span_id"]

    first_run = _find(theirs, "process", first.id)
    step_send = _find(theirs, "send", second.id)
    assert step_send["pid"] == worker.pid  # the supervisor sends the next step
    assert step_send["parent_id"] == first_run["span_id"]
    assert _find(theirs, "process", second.id)["parent_id"] == step_send["span_id"]
    first_sent = ours[first.id].context
    assert first_sent is not None
    assert {first_run["trace_id"], step_send["trace_id"]} == {first_sent.trace_id}

    # The run the hard limit cut short is lost with its child; the supervisor settles the job
    # as dead in the job's trace, reading its context from the dead job's record.
    killed_sent = ours[killed.id].context
    assert killed_sent is not None
    dead = _find(theirs, "settle", killed.id)
    assert dead["pid"] == worker.pid
    assert dead["attributes"]["messaging.operation.name"] == "dead"
    assert dead["attributes"]["error.type"] == "errands.errors.TimeLimitExceeded"
    assert dead["attributes"]["errands.task"] == "hangs"
    assert dead["parent_id"] == killed_sent.span_id
    assert dead["links"] == [killed_sent.span_id]
