"""The errands app ``errands api`` serves in the HTTP benchmarks (http.py, pages.py).

``add(x, y)`` is the task both sides of the enqueue benchmark publish; ``report`` and
``nightly`` (periodic) give the dashboard's pages something of each kind to show. The broker is
``BENCH_REDIS_URL`` (the benchmark's private server), the namespace ``BENCH_NAMESPACE``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from benchmarks.adapters.base import redis_url
from errands import App

__all__ = ["ENV_NAMESPACE", "app", "build"]

#: The variable naming the namespace of the app's keys.
ENV_NAMESPACE = "BENCH_NAMESPACE"


def build(broker_url: str, namespace: str, *, dead_max_count: int = 200_000) -> App:
    """The benchmark's app on `broker_url`, its keys under `namespace`.

    Its dead sets keep `dead_max_count` jobs, twice what the pages benchmark fills them with.
    """
    bench = App(broker_url, namespace=namespace, dead_max_count=dead_max_count)

    @bench.task(name="add")
    def add(x: int, y: int) -> int:
        """Add two integers."""
        return x + y

    @bench.task(name="report", max_retries=0)
    def report(sku: str, count: int = 1) -> str:
        """Fail for good: the dashboard's dead jobs are of this task."""
        raise KeyError(f"no sku {sku} ({count})")

    @bench.periodic(every=timedelta(hours=1))
    @bench.task(name="nightly")
    def nightly() -> None:
        """A schedule for the schedules page."""

    return bench


app = build(redis_url(), os.environ.get(ENV_NAMESPACE, "bench-http"))
