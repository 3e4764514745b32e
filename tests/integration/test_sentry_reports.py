"""Sentry reports from a real worker: the child reports a failed run, the supervisor a kill.

The worker reports with sentry-sdk's own transport to a receiver this test runs on a loopback
port. A job that fails for good makes one event from the child that ran it; a job killed at its
hard time limit makes one from the supervisor; neither is reported twice, and the job's
arguments are in neither.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from errands import JobFailed
from tests.integration.sentry_app import build
from tests.integration.workers import Workers
from tests.sentry_receiver import SentryReceiver

APP = "tests.integration.sentry_app:app"
SECRET = "4111-1111-1111-1111"


@pytest.fixture
def receiver() -> Iterator[SentryReceiver]:
    served = SentryReceiver()
    yield served
    served.close()


@pytest.mark.timeout(90)
def test_a_worker_reports_each_job_that_died_once_tagged_and_without_its_arguments(
    redis_url: str, namespace: str, tmp_path: Path, receiver: SentryReceiver
) -> None:
    app = build(redis_url, namespace, receiver.dsn)
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP)
    try:
        worker = farm.start(
            "-c", "1", "-Q", "payments", env={"ERRANDS_TEST_SENTRY_DSN": receiver.dsn}
        )
        [child] = worker.children()
        declined = app.tasks["charge"].delay(SECRET, amount=987654321)
        with pytest.raises(JobFailed, match="declined"):
            declined.get(timeout=20)
        failed = receiver.wait_for_event()

        killed = app.tasks["hangs"].delay(SECRET)
        with pytest.raises(JobFailed, match="TimeLimitExceeded"):
            killed.get(timeout=20)
        dead = receiver.wait_for_event()

        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0, worker.log()
    finally:
        farm.close()
        app.close()

    assert failed["tags"] == {
        "errands.task": "charge",
        "errands.queue": "payments",
        "errands.job_id": declined.id,
        "errands.attempt": "1",
    }
    assert failed["fingerprint"] == ["errands", "charge", "ValueError"]
    [exception] = failed["exception"]["values"]
    assert exception["type"] == "ValueError"
    assert exception["stacktrace"]["frames"][-1]["function"] == "charge"
    assert failed["contexts"]["errands"]["state"] == "failed"
    assert failed["contexts"]["errands"]["pid"] == child  # Sentry was set up in the child

    assert dead["tags"] == {
        "errands.task": "hangs",
        "errands.queue": "payments",
        "errands.job_id": killed.id,
        "errands.attempt": "1",
    }
    assert dead["fingerprint"] == ["errands", "hangs", "errands.errors.TimeLimitExceeded"]
    [exception] = dead["exception"]["values"]
    assert (exception["module"], exception["type"]) == ("errands.errors", "TimeLimitExceeded")
    assert dead["contexts"]["errands"]["state"] == "dead"
    assert dead["contexts"]["errands"]["pid"] == worker.pid  # and in the supervisor

    for event in (failed, dead):
        assert SECRET not in json.dumps(event)
        assert "987654321" not in json.dumps(event)
    # The worker and its children have exited, and sent what they held first: nothing more.
    assert receiver.received() == []
