"""Huey: ``RedisHuey``, the consumer with process workers (peers' environment).

Settings:
- ``RedisHuey`` with its defaults (``blocking=True``: the consumer waits on BRPOP, no polling);
- ``notify_result=True``: RedisStorage's documented option "for lower latency result
  notification" (the producer waits on BLPOP instead of polling with backoff);
- consumer ``-k process -w N``: one process per worker, the type the consumer's help says to
  use "for CPU-intensive workloads" (the default, one thread, cannot use a second core);
- ``-q`` (log level WARNING);
- results: Huey stores a result only when a task returns something other than None, so the
  noop and cpu tasks (which return None) store nothing, as ignore_result does elsewhere;
- bulk: none (``enqueue`` takes one task); async tasks: none (Huey tasks are plain functions).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from huey import RedisHuey

from benchmarks.adapters.base import (
    Adapter,
    counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)

huey = RedisHuey("bench", url=redis_url(), notify_result=True)


@huey.task(name="noop")
def noop() -> None:
    """One INCR."""
    counter_client().incr(counter_key())


@huey.task(name="echo")
def echo() -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    counter_client().incr(counter_key())
    return started


@huey.task(name="cpu")
def cpu(k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    counter_client().incr(counter_key())


_TASKS = {"noop": noop, "echo": echo, "cpu": cpu}


class HueyAdapter(Adapter):
    """Huey on Redis."""

    name = "huey"
    label = "Huey"
    packages = ("huey", "redis", "hiredis")
    no_bulk_reason = "no bulk API (one task per enqueue)"
    no_async_reason = "no async def tasks in Huey"
    settings = (
        "`RedisHuey(blocking=True)` (default: BRPOP, no polling)",
        "`notify_result=True` (RedisStorage: 'for lower latency result notification')",
        "consumer `-k process -w N` (consumer help: process workers for CPU-intensive work; "
        "the default, one thread, cannot use a second core); `-q` (WARNING)",
        "noop/cpu return None, so Huey stores no result for them",
    )

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One consumer with N worker processes."""
        return [
            [
                sys.executable, "-m", "huey.bin.huey_consumer", f"{__name__}.huey",
                "-k", "process", "-w", str(children), "-q",
            ]
        ]  # fmt: skip

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """Calling the task enqueues it."""
        return _TASKS[task](*args)

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``Result.get(blocking=True)``."""
        return handle.get(blocking=True, timeout=timeout_s)


ADAPTERS: dict[str, type[Adapter]] = {"huey": HueyAdapter}
