"""The app the fault tests' workers run: the integration tasks, and a few made to misbehave.

Built on first access from ``ERRANDS_BROKER_URL`` and ``ERRANDS_TEST_NAMESPACE``, with
``ERRANDS_TEST_LEASE`` (seconds), ``ERRANDS_TEST_UNKNOWN_WINDOW`` (seconds an unknown task's
jobs wait) and ``ERRANDS_TEST_NEW_TASKS=1`` (register `new_task`, which a worker of the previous
release does not know: a rolling deploy).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import redis
from tests.integration.lazy_app import lazy_app
from tests.integration.worker_app import DEFAULT_LEASE_S, Tasks, gate_key

from errands import App, TaskContext

__all__ = ["FaultTasks", "build", "runs_key"]


def runs_key(namespace: str) -> str:
    """The hash counting the runs of each `count` job, by label."""
    return f"{namespace}:test:runs"


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


class FaultTasks(Tasks):
    """The integration tasks plus the fault suite's own."""

    def __init__(self, app: App, *, new_tasks: bool = False) -> None:
        super().__init__(app)
        runs = runs_key(app.namespace)
        counter = redis.Redis.from_url(app.broker_url)

        @app.task(name="count", soft_time_limit=20, time_limit=25, max_retries=3)
        def count(label: str, seconds: float = 0.0) -> str:
            counter.hincrby(runs, label, 1)
            if seconds:
                time.sleep(seconds)
            return label

        @app.task(name="brief", result_ttl=1, soft_time_limit=5, time_limit=10)
        def brief(value: int) -> int:
            return value

        self.count = count
        self.brief = brief
        self._register_misbehaving(app)
        self._register_reporting(app)
        if new_tasks:

            @app.task(name="new_task", soft_time_limit=5, time_limit=10)
            def new_task(x: int) -> int:
                return x * 2

            self.new_task = new_task

    def _register_misbehaving(self, app: App) -> None:
        """Tasks that return what JSON cannot hold, block their loop, overrun, fail, or die."""
        record = self.record
        gates = redis.Redis.from_url(app.broker_url)

        @app.task(name="deep", bind=True, soft_time_limit=5, time_limit=10, max_retries=3)
        def deep(ctx: TaskContext, depth: int) -> list[Any]:
            record("started", ctx)
            return _nested(depth)

        @app.task(name="adeep", bind=True, soft_time_limit=5, time_limit=10, max_retries=3)
        async def adeep(ctx: TaskContext, depth: int) -> list[Any]:
            record("started", ctx)
            await asyncio.sleep(0)
            return _nested(depth)

        @app.task(name="ablock", bind=True, soft_time_limit=20, time_limit=25, max_retries=1)
        async def ablock(ctx: TaskContext, seconds: float) -> float:
            record("started", ctx)
            time.sleep(seconds)  # noqa: ASYNC251 - the point: a task that blocks its loop
            record("finished", ctx)
            return seconds

        @app.task(name="not_json", bind=True, soft_time_limit=5, time_limit=10, max_retries=0)
        def not_json(ctx: TaskContext) -> object:
            record("started", ctx)
            return {1, 2}

        @app.task(name="overrun", bind=True, soft_time_limit=0.2, time_limit=0.5, max_retries=0)
        def overrun(ctx: TaskContext) -> None:
            record("started", ctx)
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:  # noqa: BLE001 - it ignores its soft limit on purpose
                    continue

        @app.task(name="flaky", bind=True, soft_time_limit=5, time_limit=10, max_retries=0)
        def flaky(ctx: TaskContext, name: str) -> str:
            """Fails until the gate `name` is open (a fix deployed), then succeeds."""
            record("started", ctx)
            if not gates.exists(gate_key(app.namespace, name)):
                raise ValueError(f"gate {name} is closed")
            return name

        @app.task(name="lost", bind=True, soft_time_limit=5, time_limit=10, max_retries=0)
        def lost(ctx: TaskContext) -> None:
            record("started", ctx)
            os._exit(1)

        self.deep = deep
        self.adeep = adeep
        self.ablock = ablock
        self.not_json = not_json
        self.overrun = overrun
        self.lost = lost
        self.flaky = flaky

    def _register_reporting(self, app: App) -> None:
        """A task that keeps reporting its progress until a file appears (Redis may be down)."""

        @app.task(name="reporting", bind=True, soft_time_limit=40, time_limit=50, max_retries=0)
        def reporting(ctx: TaskContext, until_file: str) -> dict[str, float]:
            reports, slowest = 0, 0.0
            deadline = time.monotonic() + 30
            while not Path(until_file).exists() and time.monotonic() < deadline:
                started = time.monotonic()
                ctx.set_progress(min(reports / 1000, 1.0), "working", reports=reports)
                slowest = max(slowest, time.monotonic() - started)
                reports += 1
                time.sleep(0.01)
            return {"reports": reports, "slowest_s": slowest}

        self.reporting = reporting


def build(
    broker_url: str,
    namespace: str,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    unknown_task_window_s: float = 900.0,
    new_tasks: bool = True,
) -> FaultTasks:
    """A new app on `broker_url` and `namespace`, with every fault task registered on it."""
    app = App(
        broker_url, namespace=namespace, lease=lease_s, unknown_task_window=unknown_task_window_s
    )
    return FaultTasks(app, new_tasks=new_tasks)


def _from_environment() -> App:
    env = os.environ
    return build(
        env["ERRANDS_BROKER_URL"],
        env["ERRANDS_TEST_NAMESPACE"],
        lease_s=float(env.get("ERRANDS_TEST_LEASE", DEFAULT_LEASE_S)),
        unknown_task_window_s=float(env.get("ERRANDS_TEST_UNKNOWN_WINDOW", 900)),
        new_tasks=env.get("ERRANDS_TEST_NEW_TASKS") == "1",
    ).app


__getattr__ = lazy_app(__name__, _from_environment)
