"""TaskIQ with taskiq-redis: ``RedisStreamBroker`` and ``RedisAsyncResultBackend`` (peers' env).

Settings:
- ``RedisStreamBroker``: the broker of taskiq-redis's usage example (Redis streams, with
  acknowledgements, like errands); its defaults (``xread_count=100``, ``xread_block=2000``);
- ``RedisAsyncResultBackend(result_ex_time=3600)``: its README "highly recommends" an expiry;
  the backend stores every task's return value (there is no per-task "ignore result");
- ``taskiq worker --workers N`` (default 2) with ``--max-async-tasks`` at its default 100, or
  200 in the async scenario; ``--log-level WARNING``;
- tasks are ``async def`` (sync ones would run in a thread pool);
- bulk: none (``kiq`` sends one message).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from benchmarks.adapters.base import (
    SLEEP_S,
    Adapter,
    async_counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)

broker = RedisStreamBroker(url=redis_url(), queue_name="bench").with_result_backend(
    RedisAsyncResultBackend(redis_url=redis_url(), result_ex_time=3600)
)


@broker.task(task_name="noop")
async def noop() -> None:
    """One INCR."""
    await async_counter_client().incr(counter_key())


@broker.task(task_name="echo")
async def echo() -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    await async_counter_client().incr(counter_key())
    return started


@broker.task(task_name="cpu")
async def cpu(k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    await async_counter_client().incr(counter_key())


@broker.task(task_name="sleep")
async def sleep() -> None:
    """Await 50 ms, then one INCR."""
    await asyncio.sleep(SLEEP_S)
    await async_counter_client().incr(counter_key())


_TASKS = {"noop": noop, "echo": echo, "cpu": cpu, "sleep": sleep}


class TaskiqAdapter(Adapter):
    """TaskIQ on Redis streams."""

    name = "taskiq"
    label = "TaskIQ (taskiq-redis)"
    packages = ("taskiq", "taskiq-redis", "redis", "hiredis")
    async_native = True
    settings = (
        "`RedisStreamBroker` (taskiq-redis's usage example; acknowledged, like errands) at its "
        "defaults; `RedisAsyncResultBackend(result_ex_time=3600)` (README: expiry 'highly "
        "recommended'); every return value is stored (no per-task opt-out)",
        "`taskiq worker --workers N --log-level WARNING`, `--max-async-tasks` default 100, "
        "200 in the async scenario",
        "`wait_result()` polls every 0.2 s (its default `check_interval`)",
    )

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One ``taskiq worker`` with N processes."""
        argv = [
            sys.executable, "-m", "taskiq", "worker", f"{__name__}:broker",
            "--workers", str(children), "--log-level", "WARNING",
        ]  # fmt: skip
        if kind == "async":
            argv += ["--max-async-tasks", "200"]
        return [argv]

    async def connect(self) -> None:
        """``broker.startup()`` (creates the stream's consumer group before any message)."""
        await broker.startup()

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``task.kiq(*args)``."""
        return await _TASKS[task].kiq(*args)

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``wait_result`` (polls every 0.2 s by default)."""
        answer = await handle.wait_result(timeout=timeout_s)
        return answer.return_value

    async def close(self) -> None:
        """``broker.shutdown()``."""
        await broker.shutdown()


ADAPTERS: dict[str, type[Adapter]] = {"taskiq": TaskiqAdapter}
