"""errands: the project itself, run from the project's ``.venv``.

Settings (all defaults unless said):
- worker: ``errands worker benchmarks.adapters.errands_adapter:app -Q bench -c N``: the process
  pool (default), adaptive prefetch (default), one child per ``-c``;
- noop, cpu and sleep tasks: ``ignore_result=True``: nobody waits for them, and the docs (README,
  DESIGN section 8) say results nobody waits for should not be written;
- bulk enqueue: ``App.enqueue_many`` with 1,000 signatures a call (it sends them 200 to a Redis
  call, all calls before any reply);
- async scenario: ``--pool async -c 200``, the pool the README documents for I/O-bound async
  tasks (the process pool runs at most 100 async jobs per child);
- keys: every key starts with the app's namespace (``BENCH_NAMESPACE``), so the smoke test can
  run it on the shared test server.

``errands-mw`` is the same with three no-op middlewares (every hook overridden, doing nothing):
the cost of the seam itself, read against ``errands`` in the same run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from benchmarks.adapters.base import (
    SLEEP_S,
    Adapter,
    async_counter_client,
    chunks,
    counter_client,
    counter_key,
    cpu_work,
    echo_value,
    redis_url,
)
from errands import App, AsyncResult, Execution, Middleware, Outgoing, Task, TaskContext

__all__ = ["ErrandsAdapter", "ErrandsMiddlewareAdapter", "app", "app_mw"]

ENV_NAMESPACE = "BENCH_NAMESPACE"
QUEUE = "bench"


class NoOp(Middleware):
    """A middleware whose every hook does nothing: what the seam costs by itself."""

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        return job

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        pass

    def before_execute(self, ctx: TaskContext) -> None:
        pass

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        pass


def _app(middleware: Sequence[Middleware]) -> tuple[App, dict[str, Task[..., Any]]]:
    """An app with the benchmark's tasks, and its tasks by name."""
    built = App(
        redis_url(),
        namespace=os.environ.get(ENV_NAMESPACE, "errands"),
        default_queue=QUEUE,
        middleware=middleware,
    )

    @built.task(name="noop", ignore_result=True)
    def noop() -> None:
        """One INCR."""
        counter_client().incr(counter_key())

    @built.task(name="echo")
    def echo() -> float:
        """One INCR; returns when it started."""
        started = echo_value()
        counter_client().incr(counter_key())
        return started

    @built.task(name="cpu", ignore_result=True)
    def cpu(k: int) -> None:
        """About 5 ms of pure-Python work, then one INCR."""
        cpu_work(k)
        counter_client().incr(counter_key())

    @built.task(name="sleep", ignore_result=True)
    async def sleep() -> None:
        """Await 50 ms, then one INCR."""
        await asyncio.sleep(SLEEP_S)
        await async_counter_client().incr(counter_key())

    return built, {"noop": noop, "echo": echo, "cpu": cpu, "sleep": sleep}


app, _TASKS = _app(())
app_mw, _TASKS_MW = _app((NoOp(), NoOp(), NoOp()))


class ErrandsAdapter(Adapter):
    """errands, from the project's virtual environment."""

    name = "errands"
    label = "errands"
    packages = ("errands", "redis", "hiredis", "msgspec")
    namespaced = True
    bulk_api: ClassVar[str | None] = "App.enqueue_many (1,000 jobs per call, 200 per Redis call)"
    settings = (
        "worker: `errands worker APP -Q bench -c N` (process pool, adaptive prefetch: defaults)",
        "noop/cpu/sleep tasks: `ignore_result=True` (README, DESIGN 8: results nobody waits "
        "for are not written)",
        "async scenario: `--pool async -c 200` (README: the pool for I/O-bound async tasks)",
        "log level WARNING, as every system here (no per-job log line at INFO anyway)",
    )

    app_name = "app"

    @property
    def _app(self) -> App:
        return app_mw if self.app_name == "app_mw" else app

    @property
    def _tasks(self) -> dict[str, Task[..., Any]]:
        return _TASKS_MW if self.app_name == "app_mw" else _TASKS

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One supervisor with `children` children (or the async pool at 200)."""
        base = [sys.executable, "-m", "errands", "worker", f"{__name__}:{self.app_name}"]
        base += ["-Q", QUEUE]
        if kind == "async":
            return [[*base, "--pool", "async", "-c", "200", "--log-level", "warning"]]
        return [[*base, "-c", str(children), "--log-level", "warning"]]

    async def connect(self) -> None:
        """Ping the broker through the app's own connection."""
        self._app.inspector.queues(limit=1)

    async def send(self, task: str, args: Sequence[Any] = ()) -> AsyncResult[Any]:
        """``task.apply_async(args)``."""
        return self._tasks[task].apply_async(tuple(args))

    async def enqueue_bulk(self, task: str, args: Sequence[Any], n: int, deadline: float) -> int:
        """``app.enqueue_many`` in chunks of 1,000, as every adapter sends its bulk API."""
        import time

        target = self._tasks[task]
        done = 0
        for size in chunks(n):
            if time.monotonic() > deadline:
                break
            self._app.enqueue_many([target.s(*args) for _ in range(size)])
            done += size
        return done

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``AsyncResult.get`` (woken by the ack, no polling)."""
        assert isinstance(handle, AsyncResult)
        return handle.get(timeout=timeout_s)

    async def close(self) -> None:
        """Close the app's connections."""
        self._app.close()


class ErrandsMiddlewareAdapter(ErrandsAdapter):
    """errands with three no-op middlewares: the seam's cost, against `ErrandsAdapter`."""

    name = "errands-mw"
    label = "errands, 3 no-op middlewares"
    app_name = "app_mw"
    settings = (
        *ErrandsAdapter.settings,
        "three middlewares that override every hook with a no-op (`NoOp` in the adapter)",
    )


ADAPTERS: dict[str, type[Adapter]] = {
    "errands": ErrandsAdapter,
    "errands-mw": ErrandsMiddlewareAdapter,
}
