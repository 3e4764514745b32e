"""Dramatiq: the Redis broker, with the Results and AsyncIO middleware (peers' environment).

Settings:
- ``RedisBroker`` with its default middleware; ``dramatiq -p N`` worker processes with the
  default 8 threads each and the default prefetch (2 x threads);
- ``Results(backend=RedisBackend())``: the docs' way to get results back (for the latency
  scenario); only the echo actor sets ``store_results=True``, so noop/cpu store nothing;
- ``AsyncIO`` middleware: the docs' way to run ``async def`` actors; with it an async actor
  occupies a worker thread while it awaits, so the async scenario uses ``-p 1 -t 200``;
- bulk: none (``group(...).run()`` enqueues one message at a time);
- logs: Dramatiq logs no line per message at its default level.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from benchmarks.adapters.base import (
    SLEEP_S,
    Adapter,
    async_counter_client,
    counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)

broker = RedisBroker(url=redis_url())
broker.add_middleware(Results(backend=RedisBackend(url=redis_url())))
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def noop() -> None:
    """One INCR."""
    counter_client().incr(counter_key())


@dramatiq.actor(queue_name="bench", store_results=True)
def echo() -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    counter_client().incr(counter_key())
    return started


@dramatiq.actor(queue_name="bench")
def cpu(k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    counter_client().incr(counter_key())


@dramatiq.actor(queue_name="bench")
async def sleep() -> None:
    """Await 50 ms, then one INCR."""
    await asyncio.sleep(SLEEP_S)
    await async_counter_client().incr(counter_key())


_TASKS = {"noop": noop, "echo": echo, "cpu": cpu, "sleep": sleep}


class DramatiqAdapter(Adapter):
    """Dramatiq on Redis."""

    name = "dramatiq"
    label = "Dramatiq"
    packages = ("dramatiq", "redis", "hiredis")
    no_bulk_reason = "no bulk API: group().run() enqueues one message at a time"
    settings = (
        "`RedisBroker`, default middleware; `dramatiq -p N` processes with the default 8 "
        "threads and prefetch (2 x threads)",
        "`Results(RedisBackend)` for the latency scenario; only the echo actor stores results",
        "`AsyncIO` middleware for async actors (docs); an awaiting actor holds a worker thread, "
        "so the async scenario runs `-p 1 -t 200`",
        "no per-message log line at the default level",
    )

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One ``dramatiq`` command with N processes."""
        argv = [sys.executable, "-m", "dramatiq", f"{__name__}:broker", "-p", str(children)]
        if kind == "async":
            argv += ["-t", "200"]
        return [argv]

    async def connect(self) -> None:
        """PING."""
        broker.client.ping()

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``actor.send(*args)``."""
        return _TASKS[task].send(*args)

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``Message.get_result(block=True)``."""
        return handle.get_result(block=True, timeout=int(timeout_s * 1000))


ADAPTERS: dict[str, type[Adapter]] = {"dramatiq": DramatiqAdapter}
