"""The app of the alert and event-stream tests, run by real workers and ``errands alerts``.

Built from the environment on first access (`lazy_app`): ``ERRANDS_BROKER_URL``,
``ERRANDS_TEST_NAMESPACE``, ``ERRANDS_TEST_EVENTS`` (the events cap, 0 for none; 1,000 by
default) and ``ERRANDS_TEST_RECEIVER`` (the URL of the test's HTTP receiver: with it, the app
declares alerts on dead jobs sent to it in PagerDuty's format, quiet after
``ERRANDS_TEST_QUIET`` seconds). A test builds the same app in its own process with `build`.
"""

from __future__ import annotations

import os

from errands import App, Retry, TaskContext
from errands.observe.alerts import DeadJobs, PagerDuty
from tests.integration.lazy_app import lazy_app

__all__ = ["ROUTING_KEY", "build"]

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


__getattr__ = lazy_app(__name__, _from_environment)
