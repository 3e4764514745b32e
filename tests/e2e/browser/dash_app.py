"""The app the browser tests and the screenshot serve (`tests.e2e.env_app` builds it).

Tasks, each under a short name: ``resize`` (sleeps a little: a queue that drains visibly),
``charge`` (fails for good, at once, unless the file its argument names exists: a job that dies,
then succeeds once retried), ``digest`` (periodic, hourly).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from errands import App
from tests.e2e.env_app import app_attribute

#: The module:app spec of this app.
SPEC = "tests.e2e.browser.dash_app:app"


class PaymentDeclined(RuntimeError):
    """What ``charge`` fails with while its file is missing."""


def build(broker_url: str, namespace: str) -> App:
    """A fresh app with the browser tests' tasks, on `broker_url` in `namespace`."""
    app = App(broker_url, namespace=namespace)

    @app.task(name="resize")
    def resize(seconds: float) -> float:
        """Sleep `seconds`, then say how long."""
        time.sleep(seconds)
        return seconds

    @app.task(name="charge", max_retries=0)
    def charge(flag: str) -> str:
        """Succeed once the file `flag` exists; fail for good before."""
        if not Path(flag).exists():
            raise PaymentDeclined(f"card declined: no {Path(flag).name} yet")
        return "charged"

    @app.periodic(every=timedelta(hours=1))
    @app.task(name="digest")
    def digest() -> None:
        """A periodic task (hourly)."""

    return app


def __getattr__(name: str) -> App:
    return app_attribute(__name__, name, build)
