"""An app that reports failed jobs to Sentry, for the tests that run it on a real worker.

A worker imports ``tests.integration.sentry_app:app``, built on first access from
``ERRANDS_BROKER_URL``, ``ERRANDS_TEST_NAMESPACE`` and ``ERRANDS_TEST_SENTRY_DSN`` (the test's
receiver); a test builds the same app with `build` to send the jobs.
"""

from __future__ import annotations

import os

from errands import App
from errands.observe.sentry import SentryReports
from tests.integration.hanging import hang_past_the_soft_limit
from tests.integration.lazy_app import lazy_app

__all__ = ["build"]


def build(broker_url: str, namespace: str, dsn: str) -> App:
    """The app on `broker_url` and `namespace`, reporting to `dsn`."""
    app = App(
        broker_url,
        namespace=namespace,
        lease=2,
        middleware=[SentryReports(dsn=dsn, shutdown_timeout=5)],
    )

    @app.task(name="charge", queue="payments", max_retries=0, soft_time_limit=5, time_limit=10)
    def charge(card: str, amount: int) -> None:
        raise ValueError("the card was declined")

    @app.task(name="hangs", queue="payments", max_retries=0, soft_time_limit=0.5, time_limit=1)
    def hangs(card: str) -> None:
        hang_past_the_soft_limit()

    return app


def _from_environment() -> App:
    return build(
        os.environ["ERRANDS_BROKER_URL"],
        os.environ["ERRANDS_TEST_NAMESPACE"],
        os.environ["ERRANDS_TEST_SENTRY_DSN"],
    )


__getattr__ = lazy_app(__name__, _from_environment)
