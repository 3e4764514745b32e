"""arq: ``arq WorkerSettings``, one worker process per child (its own env, ``.venv-peers/arq``).

Settings:
- ``WorkerSettings`` at arq's defaults: ``max_jobs=10``, ``poll_delay=0.5`` s (arq polls a sorted
  set; it has no blocking fetch), ``queue_read_limit`` = max(max_jobs * 5, 100);
- 2 children are two ``arq`` processes (one asyncio loop each);
- noop/cpu/sleep functions: ``func(..., keep_result=0)`` ("if 0 the result is not kept");
- async scenario: ``max_jobs=200``;
- ``--custom-log-dict``: arq's own log config at WARNING (its default logs two lines per job);
- bulk: none (``enqueue_job`` takes one job); tasks are ``async def`` (arq runs coroutines only).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.logs import default_log_config
from arq.worker import func

from benchmarks.adapters.base import (
    SLEEP_S,
    Adapter,
    async_counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)


async def noop(ctx: dict[str, Any]) -> None:
    """One INCR."""
    await async_counter_client().incr(counter_key())


async def echo(ctx: dict[str, Any]) -> float:
    """One INCR; returns when it started."""
    started = echo_value()
    await async_counter_client().incr(counter_key())
    return started


async def cpu(ctx: dict[str, Any], k: int) -> None:
    """About 5 ms of pure-Python work, then one INCR."""
    cpu_work(k)
    await async_counter_client().incr(counter_key())


async def sleep(ctx: dict[str, Any]) -> None:
    """Await 50 ms, then one INCR."""
    await asyncio.sleep(SLEEP_S)
    await async_counter_client().incr(counter_key())


FUNCTIONS = (
    func(noop, keep_result=0),
    func(echo),
    func(cpu, keep_result=0),
    func(sleep, keep_result=0),
)

#: arq's defaults, results of noop/cpu/sleep not kept (arq reads a settings class's own
#: ``__dict__``, so each settings object is a plain dict).
WorkerSettings: dict[str, Any] = {
    "functions": FUNCTIONS,
    "redis_settings": RedisSettings.from_dsn(redis_url()),
}
#: the async scenario: 200 jobs at a time.
AsyncWorkerSettings: dict[str, Any] = {**WorkerSettings, "max_jobs": 200}


LOG_CONFIG = default_log_config(verbose=False)
for _handler in LOG_CONFIG.get("handlers", {}).values():
    _handler["level"] = "WARNING"
for _logger in LOG_CONFIG.get("loggers", {}).values():
    _logger["level"] = "WARNING"


class ArqAdapter(Adapter):
    """arq."""

    name = "arq"
    label = "arq"
    packages = ("arq", "redis", "hiredis")
    async_native = True
    settings = (
        "defaults: `max_jobs=10`, `poll_delay=0.5` s (arq polls; no blocking fetch), "
        "`queue_read_limit` 100",
        "2 children = 2 `arq` processes; async scenario `max_jobs=200`",
        "noop/cpu/sleep `func(..., keep_result=0)` (result not kept)",
        "arq's log config at WARNING (`--custom-log-dict`); `Job.result()` polls every 0.5 s "
        "(its default)",
    )

    def __init__(self) -> None:
        self.pool: ArqRedis | None = None

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One ``arq`` process per child."""
        settings = "AsyncWorkerSettings" if kind == "async" else "WorkerSettings"
        argv = [
            sys.executable, "-m", "arq", f"{__name__}.{settings}",
            "--custom-log-dict", f"{__name__}.LOG_CONFIG",
        ]  # fmt: skip
        return [argv for _ in range(children)]

    async def connect(self) -> None:
        """``create_pool``."""
        self.pool = await create_pool(RedisSettings.from_dsn(redis_url()))

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``ArqRedis.enqueue_job``."""
        assert self.pool is not None
        return await self.pool.enqueue_job(task, *args)

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``Job.result(timeout)`` (polls every 0.5 s by default)."""
        return await handle.result(timeout=timeout_s)

    async def close(self) -> None:
        """Close the pool."""
        if self.pool is not None:
            await self.pool.aclose()


ADAPTERS: dict[str, type[Adapter]] = {"arq": ArqAdapter}
