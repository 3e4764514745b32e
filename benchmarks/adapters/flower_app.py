"""The Celery app Flower serves in the HTTP benchmark (``benchmarks/http.py``), Flower's env.

One task, ``add(x, y)``, the same as errands' side (`benchmarks.adapters.web_app`). No worker
runs: the benchmark counts what Flower's ``POST /api/task/async-apply/add`` published, the
messages left in Celery's default queue (the Redis list ``celery``).

No result backend: Flower's async-apply then only publishes (with a backend it also reads the
task's state back before it answers), the fastest path it has.
"""

from __future__ import annotations

from celery import Celery

from benchmarks.adapters.base import redis_url

app = Celery("bench-http", broker=redis_url())
app.conf.update(broker_connection_retry_on_startup=True)  # silences a deprecation warning


@app.task(name="add")
def add(x: int, y: int) -> int:
    """Add two integers (never run here: the benchmark only enqueues)."""
    return x + y
