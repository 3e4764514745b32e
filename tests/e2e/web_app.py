"""The app the web tests serve, built from the test's environment (`tests.e2e.env_app`).

Tasks: ``add`` (typed ints), ``greet`` (keyword arguments with a default), ``fail`` (fails for
good at once), ``slow`` (sleeps), ``report`` (progress), ``crawl`` (progress, pausing between
reports), ``nap`` (periodic, hourly).
"""

from __future__ import annotations

import time
from datetime import timedelta

from errands import App, TaskContext
from tests.e2e.env_app import app_attribute


def build(broker_url: str, namespace: str) -> App:
    """A fresh app with the web tests' tasks, on `broker_url` in `namespace`."""
    app = App(broker_url, namespace=namespace)

    @app.task
    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    @app.task
    def greet(name: str, punctuation: str = "!") -> str:
        """Greet someone."""
        return f"hello {name}{punctuation}"

    @app.task(max_retries=0)
    def fail(reason: str) -> None:
        """Fail for good on the first attempt."""
        raise RuntimeError(reason)

    @app.task
    def slow(seconds: float) -> float:
        """Sleep, then say how long."""
        time.sleep(seconds)
        return seconds

    @app.task(bind=True)
    def report(ctx: TaskContext, steps: int) -> int:
        """Report progress at each step."""
        for step in range(steps):
            ctx.set_progress((step + 1) / steps, f"step {step + 1} of {steps}")
        return steps

    @app.task(bind=True)
    def crawl(ctx: TaskContext, steps: int, pause_s: float = 0.4) -> int:
        """Report progress at each step, pausing between (a stream sees each report)."""
        for step in range(steps):
            ctx.set_progress((step + 1) / steps, f"step {step + 1} of {steps}")
            time.sleep(min(pause_s, 2.0))
        return steps

    @app.periodic(every=timedelta(hours=1))
    @app.task
    def nap() -> None:
        """A periodic task (fires hourly; the tests pause, resume and trigger it)."""

    return app


def __getattr__(name: str) -> App:
    return app_attribute(__name__, name, build)
