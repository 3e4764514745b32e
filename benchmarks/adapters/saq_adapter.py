"""SAQ on Redis: ``saq SETTINGS --workers N`` (peers' environment).

Settings:
- ``Queue.from_url`` and worker settings at SAQ's defaults: ``concurrency=10``, dequeue with
  BLMOVE (no polling), the default timers;
- ``--workers N`` processes; async scenario ``concurrency=200``;
- noop/cpu/sleep jobs: ``ttl=-1`` ("-1 means disabled": the finished job is not kept); echo keeps
  the default ``ttl=600`` so its result can be read;
- logs: the CLI's default level is ERROR (no ``-v``);
- bulk: none (``enqueue`` takes one job; ``map`` enqueues one at a time and waits for results);
- tasks are ``async def`` taking ``ctx`` (SAQ's form).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from saq import Queue
from saq.job import TERMINAL_STATUSES

from benchmarks.adapters.base import (
    SLEEP_S,
    Adapter,
    async_counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)

queue = Queue.from_url(redis_url(), name="bench")


async def noop(ctx: dict[str, Any]) -> None:
    """One INCR."""
    await async_counter_client().incr(counter_key())


async def echo(ctx: dict[str, Any]) -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    await async_counter_client().incr(counter_key())
    return started


async def cpu(ctx: dict[str, Any], *, k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    await async_counter_client().incr(counter_key())


async def sleep(ctx: dict[str, Any]) -> None:
    """Await 50 ms, then one INCR."""
    await asyncio.sleep(SLEEP_S)
    await async_counter_client().incr(counter_key())


settings = {"queue": queue, "functions": [noop, echo, cpu, sleep]}
async_settings = {**settings, "concurrency": 200}


class SaqAdapter(Adapter):
    """SAQ."""

    name = "saq"
    label = "SAQ"
    packages = ("saq", "redis", "hiredis")
    async_native = True
    settings = (
        "defaults: `concurrency=10`, BLMOVE dequeue, default timers; `--workers N` processes; "
        "async scenario `concurrency=200`",
        "noop/cpu/sleep jobs `ttl=-1` ('-1 means disabled': not kept); echo keeps `ttl=600`",
        "CLI log level ERROR (its default)",
        "results: `Job.refresh(until_complete=...)` (pub/sub); it misses the notice of a job "
        "that finishes while it subscribes, so each wait is at most 0.5 s (the poll interval of "
        "SAQ's `Queue.apply`) before the status is read again",
    )

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One ``saq`` command with N worker processes."""
        name = "async_settings" if kind == "async" else "settings"
        return [[sys.executable, "-m", "saq", f"{__name__}.{name}", "--workers", str(children)]]

    async def connect(self) -> None:
        """``Queue.connect``."""
        await queue.connect()

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``Queue.enqueue``."""
        kwargs: dict[str, Any] = {"k": args[0]} if task == "cpu" else {}
        if task != "echo":
            kwargs["ttl"] = -1
        return await queue.enqueue(task, **kwargs)

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``Job.refresh(until_complete=...)`` (woken by the queue's pub/sub), then ``result``.

        ``refresh`` reads the job, then subscribes: a job that finishes in between is never
        announced, and a fast job often does (about one wait in a few hundred here). So each
        wait is at most 0.5 s, the poll interval of SAQ's own ``Queue.apply``, and the status
        is read again after it.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await handle.refresh(until_complete=0.5)
            if handle.status in TERMINAL_STATUSES:
                return handle.result
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {handle.key} did not finish")

    async def close(self) -> None:
        """Disconnect."""
        await queue.disconnect()


ADAPTERS: dict[str, type[Adapter]] = {"saq": SaqAdapter}
