"""The app of the alert and event-stream tests, run by real workers and ``errands alerts``.

Built from the environment on first access (`lazy_app`): ``ERRANDS_BROKER_URL``,
``ERRANDS_TEST_NAMESPACE``, ``ERRANDS_TEST_EVENTS`` (the events cap, 0 for none; 1,000 by
default) and ``ERRANDS_TEST_RECEIVER`` (the URL of the test's HTTP receiver: with it, the app
declares alerts on dead jobs sent to it in PagerDuty's format, quiet after
``ERRANDS_TEST_QUIET`` seconds). A test builds the same app in its own process with `build`,
or one that alerts a webhook with `alerting_app`; `kill_jobs` makes jobs dead through the broker.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

from errands import App, Retry, TaskContext
from errands.broker.types import Outcome
from errands.observe.alerts import DeadJobs, PagerDuty, Webhook
from tests.integration.lazy_app import lazy_app

__all__ = ["ROUTING_KEY", "alerting_app", "build", "kill_jobs", "until"]

#: The routing key the app's PagerDuty sink sends.
ROUTING_KEY = "test-routing-key-0123456789abcdef"


def build(
    broker_url: str,
    namespace: str,
    *,
    events_maxlen: int = 1_000,
    receiver: str | None = None,
    quiet_s: float = 2.0,
) -> App:
    """The app: tasks `ok`, `flaky` (fails its first attempt) and `doomed` (always fails)."""
    app = App(broker_url, namespace=namespace, events_maxlen=events_maxlen, lease=2)

    @app.task(name="ok")
    def ok(n: int) -> int:
        return n

    @app.task(name="flaky", bind=True, max_retries=2, retry_backoff=0.05, retry_jitter=False)
    def flaky(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            raise Retry(countdown=0.05)
        return ctx.attempt

    @app.task(name="doomed", max_retries=0)
    def doomed() -> None:
        raise LookupError("this task always fails")

    if receiver:
        app.alerts(
            DeadJobs(quiet=quiet_s),
            sinks=[PagerDuty(ROUTING_KEY, url=receiver)],
            every=0.2,
        )
    return app


def _from_environment() -> App:
    return build(
        os.environ.get("ERRANDS_BROKER_URL", "redis://localhost:6379/0"),
        os.environ["ERRANDS_TEST_NAMESPACE"],
        events_maxlen=int(os.environ.get("ERRANDS_TEST_EVENTS", "1000")),
        receiver=os.environ.get("ERRANDS_TEST_RECEIVER") or None,
        quiet_s=float(os.environ.get("ERRANDS_TEST_QUIET", "2")),
    )


async def kill_jobs(app: App, n: int) -> None:
    """Send `n` jobs of `doomed` and make them dead through the broker (fetch, failed ack)."""
    doomed = app.get_task("doomed")
    app.enqueue_many([doomed.s() for _ in range(n)])
    fetched = await app.broker.fetch("default", n, 10_000, "test-worker")
    failed = json.dumps({"state": "failed", "error": {"type": "LookupError", "message": "x"}})
    outcomes = [Outcome(d.id, d.token, "failed", failed.encode()) for d in fetched.jobs]
    await app.broker.ack("default", outcomes)


def alerting_app(redis_url: str, namespace: str, url: str, quiet_s: float) -> App:
    """The app, alerting on dead jobs to a webhook at `url`, evaluated every 0.1 s."""
    app = build(redis_url, namespace, events_maxlen=0)
    app.alerts(DeadJobs(quiet=quiet_s), sinks=[Webhook(url)], every=0.1)
    return app


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return once `condition()` holds (looked at every 20 ms); fail after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(0.02)


__getattr__ = lazy_app(__name__, _from_environment)
