"""Celery: prefork pool, Redis broker and Redis result backend (peers' environment).

Settings:
- broker and result backend: Redis (the issue's setup); everything else default: prefork pool,
  ``-O fair`` (the default since 4.0), early acknowledgement (``task_acks_late=False``);
- ``worker_prefetch_multiplier=64``: the Optimizing guide, "Prefetch limits": with many short
  tasks "this number should be large ... Say 64, or 128"; the default is 4;
- noop/cpu tasks: ``ignore_result=True`` (Tasks guide, "Ignore results you don't want": storing
  results costs time and resources);
- bulk: none. ``group(...).apply_async()`` publishes one message per job, the same path as
  ``delay``; ``chunks`` merges jobs into fewer, bigger ones, so it does not enqueue N jobs;
- async tasks: none (a Celery task is a plain function; an ``async def`` one returns an
  un-awaited coroutine);
- ``--loglevel WARNING`` (the worker's own default level is WARNING too).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from celery import Celery

from benchmarks.adapters.base import (
    Adapter,
    counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)

app = Celery("bench", broker=redis_url(), backend=redis_url())
app.conf.update(
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,  # silences a deprecation warning; no effect here
)


@app.task(name="noop", ignore_result=True)
def noop() -> None:
    """One INCR."""
    counter_client().incr(counter_key())


@app.task(name="echo")
def echo() -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    counter_client().incr(counter_key())
    return started


@app.task(name="cpu", ignore_result=True)
def cpu(k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    counter_client().incr(counter_key())


_TASKS = {"noop": noop, "echo": echo, "cpu": cpu}


class CeleryAdapter(Adapter):
    """Celery with the prefork pool."""

    name = "celery"
    label = "Celery (prefork)"
    packages = ("celery", "kombu", "billiard", "redis", "hiredis")
    no_bulk_reason = "no bulk API: group() publishes one message per job, like delay()"
    no_async_reason = "no async def tasks in Celery"
    settings = (
        "Redis broker and Redis result backend; prefork pool, -O fair, early ack: defaults",
        "`worker_prefetch_multiplier=64` (Optimizing guide: for many short tasks the multiplier "
        "'should be large ... Say 64, or 128'; default 4)",
        "noop/cpu tasks `ignore_result=True` (Tasks guide: ignore results you don't want)",
        "`-c N` children; `--loglevel WARNING`",
    )

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One ``celery worker`` with N prefork children."""
        return [
            [
                sys.executable, "-m", "celery", "-A", f"{__name__}:app", "worker",
                "-P", "prefork", "-c", str(children), "--loglevel", "WARNING",
            ]
        ]  # fmt: skip

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``task.delay(*args)``."""
        return _TASKS[task].delay(*args)

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``AsyncResult.get`` (the Redis backend waits on pub/sub)."""
        return handle.get(timeout=timeout_s)


ADAPTERS: dict[str, type[Adapter]] = {"celery": CeleryAdapter}
