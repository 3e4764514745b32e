"""What a producer is told at once: bad arguments, bad options, nothing to wait for."""

from __future__ import annotations

import datetime as dt
import re
import time
from datetime import timedelta

import pytest

from errands import App, ArgumentError, ConfigurationError, JobFailed, TaskContext
from errands.testing import MemoryBroker, run_jobs


@pytest.fixture
def app() -> App:
    return App(broker=MemoryBroker())


def test_arguments_that_do_not_fit_the_function_are_refused_at_enqueue(app: App) -> None:
    @app.task(name="send")
    def send(to: str, subject: str) -> None: ...

    with pytest.raises(
        ArgumentError,
        match="task 'send': send\\(\\) missing 1 required positional argument: 'subject'",
    ):
        send.delay("a@b.c")  # type: ignore[call-arg]
    with pytest.raises(ArgumentError, match="unexpected keyword argument 'cc'"):
        app.enqueue_many([send.s("a", "b").set(countdown=1), send.s("a", "b", cc="x")])  # type: ignore[call-arg]
    assert app.inspector.queue("default").ready == 0


def test_a_bound_task_is_called_without_its_context(app: App) -> None:
    @app.task(name="bound", bind=True)
    def bound(ctx: TaskContext, x: int) -> int:
        return x

    bound.delay(1)
    with pytest.raises(ArgumentError, match="takes 1 positional argument but 2 were given"):
        bound.delay(1, 2)  # type: ignore[call-arg]


def test_per_call_time_limits_accept_a_timedelta(app: App) -> None:
    @app.task(name="slow")
    def slow() -> None: ...

    slow.apply_async(soft_time_limit=timedelta(seconds=5), time_limit=timedelta(seconds=9))
    with pytest.raises(ConfigurationError, match=re.escape("soft_time_limit (9.0s) must be below")):
        slow.apply_async(soft_time_limit=timedelta(seconds=9), time_limit=5)


def test_an_unknown_option_on_a_signature_says_what_the_options_are(app: App) -> None:
    @app.task(name="noop")
    def noop() -> None: ...

    with pytest.raises(ConfigurationError, match="unknown call option"):
        noop.s().set(retries=3)


def test_a_negative_max_stalls_is_refused(app: App) -> None:
    with pytest.raises(ConfigurationError, match="max_stalls"):
        app.task(max_stalls=-1)(lambda: None)


def test_get_on_a_task_that_keeps_no_result_fails_at_once(app: App) -> None:
    @app.task(name="fire", ignore_result=True)
    def fire() -> None: ...

    with pytest.raises(ConfigurationError, match="ignore_result=True"):
        fire.delay().get(timeout=30)


def test_get_on_a_dead_job_whose_error_expired_fails_at_once() -> None:
    clock = [1_000.0]
    app = App(broker=MemoryBroker(clock=lambda: clock[0]), result_ttl=1)

    @app.task(name="broken", max_retries=0)
    def broken() -> None:
        raise ValueError("boom")

    job = broken.delay()
    run_jobs(app)
    clock[0] += 5
    started = time.monotonic()
    with pytest.raises(JobFailed, match="error record has expired"):
        job.get(timeout=30)
    assert time.monotonic() - started < 5


def test_a_forked_child_never_repeats_its_parents_job_ids() -> None:
    import os

    from errands.task import new_job_id

    new_job_id()  # the parent has randomness buffered
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_job_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child_id != new_job_id()
    assert len(child_id) == 32


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"countdown": 1, "eta": dt.datetime.now(dt.UTC)}, ConfigurationError, "not both"),
        ({"eta": dt.datetime(2030, 1, 1)}, ConfigurationError, "aware datetime"),
        ({"idempotency_ttl": "soon"}, ConfigurationError, "idempotency_ttl"),
        ({"idempotency_mode": "forever"}, ConfigurationError, "idempotency_mode"),
        ({"priority": 12}, ConfigurationError, "priority"),
        ({"time_limit": -1}, ConfigurationError, "time_limit"),
    ],
    ids=["countdown-and-eta", "naive-eta", "ttl", "mode", "priority", "limit"],
)
def test_a_bad_call_option_at_the_end_of_a_bulk_enqueue_sends_nothing(
    app: App, options: dict[str, object], error: type[Exception], message: str
) -> None:
    # Jobs are built while earlier chunks are sent: every check must come before the first.
    @app.task(name="note")
    def note(i: int) -> None: ...

    signatures = [note.s(i) for i in range(450)] + [note.s(450).set(**options)]
    with pytest.raises(error, match=message):
        app.enqueue_many(signatures)
    assert app.inspector.queue("default").ready == 0


def test_a_payload_near_the_limit_is_measured_exactly_before_a_bulk_enqueue_sends() -> None:
    app = App(broker=MemoryBroker(), max_payload_bytes=1000)

    @app.task(name="store")
    def store(text: str) -> None: ...

    # Under the limit, though over the cheap bound a bulk enqueue checks first: accepted.
    app.enqueue_many([store.s("a") for _ in range(450)] + [store.s("x" * 850)])
    assert app.inspector.queue("default").ready == 451
    with pytest.raises(ArgumentError, match="over the limit of 1,000"):
        app.enqueue_many([store.s("a") for _ in range(450)] + [store.s("x" * 990)])
    assert app.inspector.queue("default").ready == 451
