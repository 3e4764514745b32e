"""streaq: ``streaq run MODULE:worker --workers N`` on Redis streams (peers' environment).

Settings:
- ``Worker`` at streaq's defaults: ``concurrency=16``, ``prefetch`` = concurrency, pickle;
- ``--workers N`` processes; async scenario ``concurrency=200`` (read from
  ``BENCH_STREAQ_CONCURRENCY``, set in the worker's command);
- noop/cpu/sleep tasks: ``ttl=0`` (the result is not stored); echo keeps the default 5 minutes;
- bulk: ``Worker.enqueue_many`` ("uses a Redis pipeline, so it's more efficient");
- logs: streaq's CLI logs at INFO and has no quieter flag; it writes no line per task at INFO
  in this version;
- tasks are ``async def``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from streaq import Worker

from benchmarks.adapters.base import (
    SLEEP_S,
    Adapter,
    async_counter_client,
    chunks,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)

_CONCURRENCY_ENV = "BENCH_STREAQ_CONCURRENCY"
worker: Worker[Any] = Worker(
    redis_url=redis_url(),
    queue_name="bench",
    concurrency=int(os.environ.get(_CONCURRENCY_ENV, "16")),
)


@worker.task(name="noop", ttl=0)
async def noop() -> None:
    """One INCR."""
    await async_counter_client().incr(counter_key())


@worker.task(name="echo")
async def echo() -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    await async_counter_client().incr(counter_key())
    return started


@worker.task(name="cpu", ttl=0)
async def cpu(k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    await async_counter_client().incr(counter_key())


@worker.task(name="sleep", ttl=0)
async def sleep() -> None:
    """Await 50 ms, then one INCR."""
    await asyncio.sleep(SLEEP_S)
    await async_counter_client().incr(counter_key())


_TASKS: dict[str, Any] = {"noop": noop, "echo": echo, "cpu": cpu, "sleep": sleep}


class StreaqAdapter(Adapter):
    """streaq."""

    name = "streaq"
    label = "streaq"
    packages = ("streaq", "coredis", "anyio")
    bulk_api = "Worker.enqueue_many (one pipeline per 1,000 jobs)"
    async_native = True
    settings = (
        "defaults: `concurrency=16`, prefetch = concurrency, pickle; `--workers N` processes; "
        "async scenario `concurrency=200`",
        "noop/cpu/sleep tasks `ttl=0` (result not stored); echo keeps the default 5 min",
        "CLI log level INFO (no quieter flag; no per-task line at INFO)",
    )

    def __init__(self) -> None:
        self._entered = False

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One ``streaq run`` with N worker processes."""
        concurrency = "200" if kind == "async" else "16"
        return [
            [
                "/usr/bin/env", f"{_CONCURRENCY_ENV}={concurrency}",
                sys.executable, "-m", "streaq", "run", f"{__name__}:worker",
                "--workers", str(children),
            ]
        ]  # fmt: skip

    async def connect(self) -> None:
        """Enter the worker's context (its Redis connection)."""
        await worker.__aenter__()
        self._entered = True

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``await task.enqueue(*args)``."""
        return await _TASKS[task].enqueue(*args)

    async def enqueue_bulk(self, task: str, args: Sequence[Any], n: int, deadline: float) -> int:
        """``worker.enqueue_many`` in chunks of 1,000."""
        done = 0
        for size in chunks(n):
            if time.monotonic() > deadline:
                break
            await worker.enqueue_many([_TASKS[task].enqueue(*args) for _ in range(size)])
            done += size
        return done

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``Task.result(timeout)``."""
        answer = await handle.result(timeout=int(max(1, timeout_s)))
        return answer.result

    async def close(self) -> None:
        """Leave the worker's context."""
        if self._entered:
            await worker.__aexit__(None, None, None)


ADAPTERS: dict[str, type[Adapter]] = {"streaq": StreaqAdapter}
