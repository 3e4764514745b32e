"""Sentry reports from runs in this process: what an event holds, when one is sent, and faults.

Jobs run with `run_jobs` on the memory broker; sentry-sdk sends with its own transport to a
receiver on a loopback port (`tests.sentry_receiver`), whose events the tests read with a bound.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator

import pytest
import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from errands import App, ConfigurationError, RateLimited, Retry, TaskContext
from errands.observe.sentry import SentryReports
from errands.result import ErrorInfo
from errands.testing import MemoryBroker, run_jobs
from tests.sentry_receiver import BlackHole, SentryReceiver

SECRET = "4111-1111-1111-1111"


@pytest.fixture
def receiver() -> Iterator[SentryReceiver]:
    served = SentryReceiver()
    yield served
    served.close()


@pytest.fixture(autouse=True)
def no_sentry_left() -> Iterator[None]:
    """Each test sets Sentry up afresh: none from an earlier test, none left for the next."""
    _forget_sentry()
    yield
    _forget_sentry()


def _forget_sentry() -> None:
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=0)
    for scope in (
        sentry_sdk.get_global_scope(),
        sentry_sdk.get_isolation_scope(),
        sentry_sdk.get_current_scope(),
    ):
        scope.set_client(None)


def _app(reports: SentryReports) -> App:
    app = App(broker=MemoryBroker(), middleware=[reports])

    @app.task(name="charge", queue="payments", max_retries=0)
    def charge(card: str, amount: int) -> None:
        raise ValueError("the card was declined")

    throttles = [RateLimited(retry_after=0)]  # the first run is told to wait, once

    @app.task(name="throttled", max_retries=2)
    def throttled() -> None:
        if throttles:
            raise throttles.pop()

    @app.task(name="again", bind=True, max_retries=2)
    def again(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            ctx.retry(countdown=0)
        return ctx.attempt

    @app.task(name="flaky", bind=True, max_retries=2, retry_backoff=False)
    def flaky(ctx: TaskContext, card: str) -> int:
        if ctx.attempt < 3:
            raise Retry(countdown=0, exc=ConnectionError(f"attempt {ctx.attempt}"))
        return ctx.attempt

    return app


def test_a_job_that_fails_for_good_sends_one_tagged_grouped_scrubbed_event(
    receiver: SentryReceiver,
) -> None:
    app = _app(SentryReports(dsn=receiver.dsn))
    sent = app.tasks["charge"].delay(SECRET, amount=987654321)
    run_jobs(app)

    event = receiver.wait_for_event()
    assert event["tags"] == {
        "errands.task": "charge",
        "errands.queue": "payments",
        "errands.job_id": sent.id,
        "errands.attempt": "1",
    }
    assert event["fingerprint"] == ["errands", "charge", "ValueError"]
    assert event["level"] == "error"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ValueError"
    assert exception["value"] == "the card was declined"
    assert exception["mechanism"] == {"type": "errands", "handled": False}
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["function"] == "charge"
    assert all("vars" not in frame for frame in frames)
    assert event["contexts"]["errands"]["state"] == "failed"
    assert SECRET not in json.dumps(event)
    assert "987654321" not in json.dumps(event)
    sentry_sdk.flush(timeout=5)
    assert receiver.received() == []  # one event, not two


def test_retried_attempts_are_reported_only_with_every_attempt(
    receiver: SentryReceiver,
) -> None:
    quiet = _app(SentryReports(dsn=receiver.dsn))
    quiet.tasks["flaky"].delay(SECRET)
    assert run_jobs(quiet) == 3
    sentry_sdk.flush(timeout=5)
    assert receiver.received() == []

    loud = _app(SentryReports(dsn=receiver.dsn, every_attempt=True))
    sent = loud.tasks["flaky"].delay(SECRET)
    assert run_jobs(loud) == 3
    first, second = receiver.wait_for_event(), receiver.wait_for_event()
    assert [first["tags"]["errands.attempt"], second["tags"]["errands.attempt"]] == ["1", "2"]
    assert {first["tags"]["errands.job_id"], second["tags"]["errands.job_id"]} == {sent.id}
    assert first["fingerprint"] == ["errands", "flaky", "ConnectionError"]
    assert first["contexts"]["errands"]["state"] == "retrying"

    # Asking to run again (a rate limit, a bare ctx.retry()) is no failed attempt.
    loud.tasks["again"].delay()
    loud.tasks["throttled"].delay()
    assert run_jobs(loud) == 4
    sentry_sdk.flush(timeout=5)
    assert receiver.received() == []


def test_arguments_are_sent_only_when_asked_for(receiver: SentryReceiver) -> None:
    app = _app(SentryReports(dsn=receiver.dsn, include_arguments=True))
    app.tasks["charge"].delay(SECRET, amount=987654321)
    run_jobs(app)
    event = receiver.wait_for_event()
    [exception] = event["exception"]["values"]
    task_frame = exception["stacktrace"]["frames"][-1]
    assert SECRET in task_frame["vars"]["card"]
    assert task_frame["vars"]["amount"] == "987654321"


def test_a_sentry_that_never_answers_does_not_slow_a_job() -> None:
    hole = BlackHole()
    try:
        app = _app(SentryReports(dsn=hole.dsn, shutdown_timeout=0))
        app.tasks["charge"].delay(SECRET, amount=1)
        run_jobs(app)  # the first report sets Sentry up
        results = [app.tasks["charge"].delay(SECRET, amount=n) for n in range(20)]
        started = time.perf_counter()
        assert run_jobs(app) == 20
        took = time.perf_counter() - started
        for result in results:
            assert result.state == "failed"
    finally:
        hole.close()
    # Twenty failing jobs and their reports, the transport stuck on its first request: the
    # reports are queued, never waited for (one round trip to a Sentry would be 0.5 s here).
    assert took < 0.5


def test_without_sentry_sdk_the_reports_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'errands\[sentry\]'"):
        SentryReports(dsn="http://public@127.0.0.1:9/1")


def test_the_supervisor_reports_only_the_deaths_no_run_saw(receiver: SentryReceiver) -> None:
    reports = SentryReports(dsn=receiver.dsn, include_arguments=True)
    app = _app(reports)
    sent = app.tasks["charge"].delay(SECRET, amount=5)
    # What the supervisor's hooks hear: a run's own failure (reported by that run), then a kill
    # at the hard time limit, which no run saw.
    reports.on_dead("payments", sent.id, ErrorInfo("ValueError", "reported by its run"))
    reports.on_dead("payments", sent.id, ErrorInfo("errands.errors.WorkerLost", "it died"))

    event = receiver.wait_for_event()
    assert event["tags"]["errands.task"] == "charge"
    assert event["tags"]["errands.job_id"] == sent.id
    assert event["fingerprint"] == ["errands", "charge", "errands.errors.WorkerLost"]
    assert event["contexts"]["errands"]["args"] == [SECRET]
    assert event["contexts"]["errands"]["kwargs"] == {"amount": 5}
    sentry_sdk.flush(timeout=5)
    assert receiver.received() == []


def test_a_sentry_the_app_set_up_itself_gets_the_reports_and_no_second_event_from_the_log(
    receiver: SentryReceiver,
) -> None:
    sentry_sdk.init(
        receiver.dsn,
        default_integrations=False,
        integrations=[LoggingIntegration(event_level=logging.ERROR)],
    )
    app = _app(SentryReports())
    sent = app.tasks["charge"].delay(SECRET, amount=5)
    run_jobs(app)
    # What a worker logs when a job dies: the logging integration must leave it to the reports.
    logging.getLogger("errands.worker").error("job %s failed for good", sent.id)
    logging.getLogger("elsewhere").error("an error of the app's own")

    first, second = receiver.wait_for_event(), receiver.wait_for_event()
    assert first["tags"]["errands.job_id"] == sent.id
    assert second["logentry"]["message"] == "an error of the app's own"
    sentry_sdk.flush(timeout=5)
    assert receiver.received() == []
