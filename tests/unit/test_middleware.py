"""Middleware on the memory broker: every way out passes `before_enqueue`, every run the hooks.

What each hook sees and may do: change a job's priority, delay, key and headers before it is
sent, refuse it with an errands error; observe each run and how it ended. A hook that breaks is
logged and skipped, and the job goes on.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from errands import (
    App,
    ArgumentError,
    ConfigurationError,
    JobFailed,
    Retry,
    TaskContext,
    chain,
    chord,
    group,
)
from errands.middleware import Execution, Middleware, Outgoing
from errands.testing import MemoryBroker, run_jobs


class Recorder(Middleware):
    """Records every hook call: (hook, task or job id, what it saw)."""

    task_options = frozenset({"audit"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        self.calls.append(("before_enqueue", job.task, job.queue))
        return job

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        self.calls.append(("after_enqueue", job.task, created))

    def before_execute(self, ctx: TaskContext) -> None:
        self.calls.append(("before_execute", ctx.task, ctx.attempt))

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        error = execution.error.type if execution.error else None
        self.calls.append(("after_execute", ctx.task, (execution.state, error)))

    def hooks(self, name: str) -> list[tuple[str, Any]]:
        return [(task, seen) for hook, task, seen in self.calls if hook == name]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(recorder: Recorder) -> App:
    return App(broker=MemoryBroker(), middleware=[recorder])


def test_every_way_out_passes_before_and_after_enqueue(app: App, recorder: Recorder) -> None:
    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="total")
    def total(values: list[int]) -> int:
        return sum(values)

    add.delay(1, 2)
    add.apply_async((1, 2), queue="other")
    app.send_task("add", (3, 4))
    app.enqueue_many([add.s(5, 6), add.s(7, 8)])
    group(add.s(1, 1)).delay()
    chain(add.s(1, 1), add.partial(1)).delay()
    chord([add.s(2, 2), add.s(3, 3)], total.partial()).delay()
    sent = recorder.hooks("before_enqueue")
    # The chord's callback goes through before_enqueue at the chord's start; its members after.
    assert sent == [("add", "default"), ("add", "other")] + [("add", "default")] * 5 + [
        ("total", "default"),
        ("add", "default"),
        ("add", "default"),
    ]
    assert len(recorder.hooks("after_enqueue")) == len(sent) - 1  # Redis enqueues the callback
    run_jobs(app)
    # The chain's next step went out through the same door, once its parent succeeded.
    assert recorder.hooks("before_enqueue")[-1] == ("add", "default")
    assert len(recorder.hooks("before_enqueue")) == len(sent) + 1


def test_before_enqueue_may_change_priority_delay_key_and_headers() -> None:
    class Stamp(Middleware):
        def before_enqueue(self, job: Outgoing) -> Outgoing:
            headers = {**job.headers, "tenant": "acme"}
            return msgspec.structs.replace(
                job, priority=7, idempotency_key=f"k-{job.args[0]}", headers=headers
            )

    stamped = App(broker=MemoryBroker(), middleware=[Stamp()])
    seen: list[tuple[dict[str, Any], int]] = []

    @stamped.task(name="show", bind=True)
    def show(ctx: TaskContext, n: int) -> int:
        seen.append((dict(ctx.headers), ctx.priority))
        return n

    first = show.delay(1)
    assert show.delay(1).id == first.id  # the key the middleware gave makes it a duplicate
    run_jobs(stamped)
    assert seen == [({"tenant": "acme"}, 7)]


def test_before_enqueue_may_not_change_what_runs() -> None:
    class Swap(Middleware):
        def before_enqueue(self, job: Outgoing) -> Outgoing:
            return msgspec.structs.replace(job, args=[0])

    swapping = App(broker=MemoryBroker(), middleware=[Swap()])

    @swapping.task(name="echo")
    def echo(n: int) -> int:
        return n

    with pytest.raises(ConfigurationError, match="not its id, task, queue or arguments"):
        echo.delay(1)


def test_an_errands_error_in_before_enqueue_refuses_the_send() -> None:
    class Refuse(Middleware):
        def before_enqueue(self, job: Outgoing) -> Outgoing:
            raise ArgumentError(f"task {job.task!r} is closed for maintenance")

    closed = App(broker=MemoryBroker(), middleware=[Refuse()])

    @closed.task(name="echo")
    def echo(n: int) -> int:
        return n

    with pytest.raises(ArgumentError, match="closed for maintenance"):
        echo.delay(1)
    with pytest.raises(ArgumentError, match="closed for maintenance"):
        closed.enqueue_many([echo.s(1), echo.s(2)])
    assert closed.broker.inspector.queue("default").ready == 0


def test_a_hook_that_breaks_is_logged_and_the_job_goes_on(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Middleware):
        def before_enqueue(self, job: Outgoing) -> Outgoing:
            raise RuntimeError("a bug in the middleware")

        def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
            raise RuntimeError("another bug")

    app = App(broker=MemoryBroker(), middleware=[Broken(), recorder])

    @app.task(name="echo")
    def echo(n: int) -> int:
        return n

    with caplog.at_level(logging.ERROR, logger="errands.middleware"):
        handle = echo.delay(5)
        assert run_jobs(app) == 1
    assert handle.get(timeout=0) == 5
    assert recorder.hooks("after_execute") == [("echo", ("succeeded", None))]
    assert [r.getMessage() for r in caplog.records] == [
        "middleware Broken failed in before_enqueue; the job goes on without it",
        "middleware Broken failed in after_execute; the job goes on without it",
    ]


def test_execute_hooks_see_each_run_and_how_it_ended(app: App, recorder: Recorder) -> None:
    @app.task(name="flaky", bind=True, max_retries=1, retry_backoff=False)
    def flaky(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            raise Retry(countdown=0)
        return ctx.attempt

    @app.task(name="broken", max_retries=0)
    def broken() -> None:
        raise KeyError("gone")

    handle = flaky.delay()
    failing = broken.delay()
    run_jobs(app)
    assert handle.get(timeout=0) == 2
    with pytest.raises(JobFailed):
        failing.get(timeout=0)
    assert recorder.hooks("before_execute") == [("flaky", 1), ("broken", 1), ("flaky", 2)]
    assert recorder.hooks("after_execute") == [
        ("flaky", ("retrying", "errands.errors.Retry")),
        ("broken", ("failed", "KeyError")),
        ("flaky", ("succeeded", None)),
    ]


def test_a_task_option_for_middleware_reaches_its_context(app: App) -> None:
    seen: list[dict[str, Any]] = []

    @app.task(name="audited", bind=True, extras={"audit": "payments"})
    def audited(ctx: TaskContext) -> None:
        seen.append(dict(ctx.extras))

    assert audited.options.extras == {"audit": "payments"}
    audited.delay()
    run_jobs(app)
    assert seen == [{"audit": "payments"}]


def test_a_task_option_no_middleware_of_the_app_reads_is_refused() -> None:
    plain = App(broker=MemoryBroker())
    with pytest.raises(ConfigurationError, match=r"extras\['audit'\].*Recorder"):

        @plain.task(name="audited", extras={"audit": "payments"})
        def audited() -> None: ...

    with pytest.raises(ConfigurationError, match="no middleware defines it"):

        @plain.task(name="typo", extras={"audti": "payments"})
        def typo() -> None: ...
