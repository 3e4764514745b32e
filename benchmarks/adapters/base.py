"""What every adapter provides, and the pieces of the task bodies that all systems share.

It needs only the standard library and redis-py, which every environment has.

The task bodies are the same everywhere:

- ``noop()``: one Redis ``INCR`` of the counter (completion is counted the same way everywhere);
  nobody waits for its result, so each adapter uses its system's documented "do not store the
  result" option where it has one;
- ``echo()``: the ``INCR``, then returns ``time.time()`` taken when it started (the latency
  scenario reads enqueue-to-start from it); its result is kept and waited for;
- ``cpu(k)``: :func:`cpu_work` (``k`` iterations of a pure-Python loop, about 5 ms, calibrated once
  by the driver so every system does the same work), then the ``INCR``;
- ``sleep()``: ``async def``: ``await asyncio.sleep(0.05)``, then the ``INCR``.

Sync-first systems (errands, Celery, RQ, Dramatiq, Huey) run sync bodies with a sync client;
async-first systems (arq, SAQ, streaq, TaskIQ) run ``async def`` bodies with ``redis.asyncio``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = [
    "ENV_PREFIX",
    "ENV_URL",
    "SLEEP_S",
    "Adapter",
    "async_counter_client",
    "counter_client",
    "counter_key",
    "cpu_body",
    "cpu_work",
    "echo_body",
    "echo_value",
    "noop_body",
    "redis_url",
]

#: The environment variables that tell task bodies (in workers) and producers where to work.
ENV_URL = "BENCH_REDIS_URL"
ENV_PREFIX = "BENCH_PREFIX"

#: How long the async task sleeps, in seconds.
SLEEP_S = 0.05


def redis_url() -> str:
    """The URL of the benchmark's Redis server."""
    return os.environ.get(ENV_URL, "redis://127.0.0.1:6379/0")


def key_prefix() -> str:
    """The prefix of the benchmark's own keys (empty on a private server)."""
    return os.environ.get(ENV_PREFIX, "")


def counter_key() -> str:
    """The key every task increments once: the driver counts completions with it."""
    return f"{key_prefix()}bench:count"


_sync_clients: list[Any] = []
_async_clients: list[Any] = []


def counter_client() -> Any:
    """This process's sync connection for the counter, made on first use (after any fork)."""
    if not _sync_clients:
        import redis

        _sync_clients.append(redis.Redis.from_url(redis_url()))
    return _sync_clients[0]


def async_counter_client() -> Any:
    """This process's asyncio client for the counter, made on first use.

    Its pool allows 1,000 connections: redis-py 8 refuses a 101st by default, and the async
    scenario runs 200 jobs at once.
    """
    if not _async_clients:
        import redis.asyncio

        _async_clients.append(redis.asyncio.Redis.from_url(redis_url(), max_connections=1000))
    return _async_clients[0]


def cpu_work(k: int) -> int:
    """Pure-Python CPU work: ``k`` loop iterations (the driver calibrates ``k`` to ~5 ms)."""
    total = 0
    for i in range(k):
        total += i % 7
    return total


def echo_value() -> float:
    """What the echo task returns: the wall-clock time at which it started."""
    return time.time()


def noop_body() -> None:
    """The noop task: one INCR of the counter."""
    counter_client().incr(counter_key())


def echo_body() -> float:
    """The echo task: the INCR; returns when it started."""
    started = echo_value()
    counter_client().incr(counter_key())
    return started


def cpu_body(k: int) -> None:
    """The cpu task: about 5 ms of pure-Python work, then the INCR."""
    cpu_work(k)
    counter_client().incr(counter_key())


class Adapter:
    """One system: how to reach it from a producer, and how to start its workers.

    Producer methods are ``async`` so that async-first systems run on the producer's one event
    loop; sync systems simply block inside them (the producer process does nothing else).
    """

    #: the system's name in the driver (``--systems``)
    name: ClassVar[str]
    #: how the system is shown in RESULTS.md
    label: ClassVar[str]
    #: distributions whose versions RESULTS.md reports
    packages: ClassVar[tuple[str, ...]] = ()
    #: True when every key it writes starts with the prefix, so it may share a server
    namespaced: ClassVar[bool] = False
    #: the bulk enqueue API, or None when the system has none (scenario 1 bulk is then n/a)
    bulk_api: ClassVar[str | None] = None
    #: why there is no bulk API (shown in RESULTS.md)
    no_bulk_reason: ClassVar[str] = "no bulk enqueue API"
    #: None when ``async def`` tasks run concurrently; else why scenario 7 is n/a
    no_async_reason: ClassVar[str | None] = None
    #: every setting chosen, with the reason (the docs' word, or "default")
    settings: ClassVar[tuple[str, ...]] = ()
    #: True when `send` awaits I/O, so that queueing (untimed) may run many sends at once
    async_native: ClassVar[bool] = False

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """The commands that start workers with `children` children in all.

        Args:
            kind: "default" (noop, echo, cpu tasks) or "async" (2,000 sleeps at concurrency 200).
            children: worker children (processes that run tasks), 1 or 2.

        Returns:
            One argv per process to start (several for systems that scale by running more
            worker processes); the driver starts each in its own session and stops it by pid.
        """
        raise NotImplementedError

    async def connect(self) -> None:
        """Open connections, so that connecting is not timed."""

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """Enqueue one job of `task` ("noop", "echo", "cpu" or "sleep"); return its handle."""
        raise NotImplementedError

    async def enqueue_one_by_one(
        self, task: str, args: Sequence[Any], n: int, deadline: float
    ) -> int:
        """Enqueue `n` jobs, one call each, stopping at `deadline` (monotonic); return how many."""
        for done in range(n):
            if done % 100 == 0 and time.monotonic() > deadline:
                return done
            await self.send(task, args)
        return n

    async def enqueue_bulk(self, task: str, args: Sequence[Any], n: int, deadline: float) -> int:
        """Enqueue `n` jobs with the bulk API in chunks, stopping at `deadline`; return how many."""
        raise NotImplementedError

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """Wait for the result of the job `handle` with the system's own API; return it."""
        raise NotImplementedError

    async def warm_up(self, timeout_s: float) -> None:
        """Send one echo job and wait for it: it waits out the worker's start-up, untimed."""
        handle = await self.send("echo")
        await self.result(handle, timeout_s)

    async def close(self) -> None:
        """Close connections."""


def chunks(n: int, size: int = 1000) -> list[int]:
    """`n` split into chunk sizes of at most `size` (the bulk paths send 1,000 jobs a call)."""
    return [min(size, n - start) for start in range(0, n, size)]
