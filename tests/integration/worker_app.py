"""The app the worker integration tests run in real worker processes.

Each task records what happened to it as a JSON event pushed on the Redis list
``<namespace>:test:events`` (`events_key`), so a test waits for those events (BLPOP, bounded)
instead of sleeping. Every task names itself and states short, explicit limits and retry options.

A worker imports ``tests.integration.worker_app:app``, which is built on first access from
``ERRANDS_BROKER_URL``, ``ERRANDS_TEST_NAMESPACE`` and ``ERRANDS_TEST_LEASE`` (seconds, default
2). A test builds the same tasks on its own broker and namespace with `build`, to send jobs that
carry the tasks' real options (max attempts, priority, queue).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import redis

from errands import App, Retry, SoftTimeLimitExceeded, TaskContext
from tests.integration.lazy_app import lazy_app

__all__ = ["DEFAULT_LEASE_S", "Tasks", "build", "events_key", "gate_key"]

DEFAULT_LEASE_S = 2.0
_STEP_S = 0.02  # how often a waiting task looks at its gate or its cancel flag
_MAX_WAIT_S = 20.0  # no task here waits longer than this, whatever a test forgets to do

_clients: dict[str, redis.Redis] = {}


def events_key(namespace: str) -> str:
    """The list every task of `namespace` pushes its events on."""
    return f"{namespace}:test:events"


def gate_key(namespace: str, name: str) -> str:
    """The key whose existence lets a `gate` job with that name finish."""
    return f"{namespace}:test:gate:{name}"


def _client(url: str) -> redis.Redis:
    found = _clients.get(url)
    if found is None:
        found = _clients[url] = redis.Redis.from_url(url)
    return found


class Tasks:
    """The tasks of one app, as attributes, so a test can send jobs with their options.

    Args:
        app: the app to register them on.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.events_key = events_key(app.namespace)
        self._register_runs(app)
        self._register_limits(app)
        self._register_retries(app)
        self._register_plain(app)
        self._register_progress(app)

    def _register_runs(self, app: App) -> None:
        """Jobs that take time, wait for a gate, die, or report where they ran."""
        record = self.record

        @app.task(name="slow", bind=True, soft_time_limit=20, time_limit=25, max_retries=1)
        def slow(ctx: TaskContext, seconds: float) -> float:
            record("started", ctx)
            time.sleep(seconds)
            record("finished", ctx)
            return seconds

        @app.task(name="gate", bind=True, soft_time_limit=20, time_limit=25, max_retries=1)
        def gate(ctx: TaskContext, name: str) -> str:
            record("started", ctx, gate=name)
            self.wait_for_gate(name)
            record("finished", ctx, gate=name)
            return name

        @app.task(name="where", bind=True, soft_time_limit=5, time_limit=10)
        def where(ctx: TaskContext) -> dict[str, int]:
            record("started", ctx)
            return {"pid": os.getpid(), "ppid": os.getppid()}

        @app.task(name="until_cancelled", bind=True, soft_time_limit=20, time_limit=25)
        def until_cancelled(ctx: TaskContext) -> str:
            record("started", ctx)
            deadline = time.monotonic() + _MAX_WAIT_S
            while not ctx.is_cancelled():
                if time.monotonic() > deadline:
                    return "never saw the cancel request"
                time.sleep(_STEP_S)
            record("saw_cancel", ctx)
            return "stopped"

        @app.task(name="die", bind=True, max_retries=1, retry_backoff=0.1, soft_time_limit=5)
        def die(ctx: TaskContext, times: int) -> int:
            record("started", ctx)
            if ctx.attempt <= times:
                os._exit(1)
            return ctx.attempt

        @app.task(name="describe", bind=True, soft_time_limit=5, time_limit=10)
        def describe(ctx: TaskContext) -> dict[str, Any]:
            ctx.log.info("describing job %s", ctx.id)
            return {
                "id": ctx.id,
                "task": ctx.task,
                "attempt": ctx.attempt,
                "max_retries": ctx.max_retries,
                "queue": ctx.queue,
                "priority": ctx.priority,
                "seconds_to_deadline": (ctx.deadline or 0.0) - time.time(),
            }

        self.slow = slow
        self.gate = gate
        self.where = where
        self.until_cancelled = until_cancelled
        self.die = die
        self.describe = describe

    def _register_limits(self, app: App) -> None:
        """Jobs that run into their soft or hard time limit."""
        record = self.record

        @app.task(name="hang", bind=True, soft_time_limit=0.3, time_limit=1.0, max_retries=0)
        def hang(ctx: TaskContext) -> None:
            record("started", ctx)
            deadline = time.monotonic() + _MAX_WAIT_S
            while time.monotonic() < deadline:
                try:
                    time.sleep(_STEP_S)
                except SoftTimeLimitExceeded:
                    record("soft_limit_ignored", ctx)

        @app.task(name="soft_sync", bind=True, soft_time_limit=0.5, time_limit=5, max_retries=0)
        def soft_sync(ctx: TaskContext) -> str:
            record("started", ctx)
            try:
                time.sleep(_MAX_WAIT_S)
            except SoftTimeLimitExceeded:
                record("cleanup", ctx)
                return "cleaned up"
            return "slept through its soft limit"

        @app.task(name="soft_async", bind=True, soft_time_limit=0.5, time_limit=5, max_retries=0)
        async def soft_async(ctx: TaskContext) -> str:
            record("started", ctx)
            try:
                await asyncio.sleep(_MAX_WAIT_S)
            except asyncio.CancelledError:
                record("cancelled", ctx)
                raise
            finally:
                record("finally", ctx)
            return "slept through its soft limit"

        self.hang = hang
        self.soft_sync = soft_sync
        self.soft_async = soft_async

    def _register_retries(self, app: App) -> None:
        """Jobs that fail, retry, or wait where they must not."""
        record = self.record
        where = self.where

        @app.task(
            name="always_fails",
            bind=True,
            max_retries=3,
            retry_backoff=0.2,
            retry_backoff_max=2,
            soft_time_limit=5,
            time_limit=10,
        )
        def always_fails(ctx: TaskContext) -> None:
            record("started", ctx)
            raise ValueError(f"failure on attempt {ctx.attempt}")

        @app.task(
            name="picky",
            bind=True,
            autoretry_for=(OSError,),
            dont_autoretry_for=(PermissionError,),
            max_retries=2,
            retry_backoff=0.05,
            soft_time_limit=5,
            time_limit=10,
        )
        def picky(ctx: TaskContext, error: str) -> int:
            record("started", ctx)
            if ctx.attempt == 1:
                raise {"PermissionError": PermissionError, "TimeoutError": TimeoutError}.get(
                    error, ValueError
                )(f"{error} on attempt {ctx.attempt}")
            return ctx.attempt

        @app.task(name="retry_by_ctx", bind=True, max_retries=2, soft_time_limit=5, time_limit=10)
        def retry_by_ctx(ctx: TaskContext, countdown: float) -> int:
            record("started", ctx)
            if ctx.attempt == 1:
                ctx.retry(countdown=countdown)
            return ctx.attempt

        @app.task(name="retry_by_raise", bind=True, max_retries=2, soft_time_limit=5, time_limit=10)
        def retry_by_raise(ctx: TaskContext, countdown: float) -> int:
            record("started", ctx)
            if ctx.attempt == 1:
                raise Retry(countdown=countdown)
            return ctx.attempt

        @app.task(name="waits_inside", bind=True, max_retries=0, soft_time_limit=5, time_limit=10)
        def waits_inside(ctx: TaskContext) -> dict[str, int]:
            record("started", ctx)
            return where.delay().get(timeout=2)

        @app.task(name="awaits_inside", bind=True, max_retries=0, soft_time_limit=5, time_limit=10)
        async def awaits_inside(ctx: TaskContext) -> dict[str, int]:
            record("started", ctx)
            return await (await where.adelay()).aget(timeout=2)

        self.always_fails = always_fails
        self.picky = picky
        self.retry_by_ctx = retry_by_ctx
        self.retry_by_raise = retry_by_raise
        self.waits_inside = waits_inside
        self.awaits_inside = awaits_inside

    def _register_plain(self, app: App) -> None:
        """Quick jobs: order marks, echoes, sync and async additions."""
        record = self.record

        @app.task(name="mark", bind=True, soft_time_limit=5, time_limit=10)
        def mark(ctx: TaskContext, label: str) -> str:
            record("ran", ctx, label=label)
            return label

        @app.task(name="echo", soft_time_limit=5, time_limit=10)
        def echo(value: int, seconds: float = 0.0) -> int:
            time.sleep(seconds)
            return value

        @app.task(name="add", soft_time_limit=5, time_limit=10)
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(name="aadd", soft_time_limit=5, time_limit=10)
        async def aadd(x: int, y: int) -> int:
            await asyncio.sleep(0)
            return x + y

        self.mark = mark
        self.echo = echo
        self.add = add
        self.aadd = aadd

    def _register_progress(self, app: App) -> None:
        """Jobs that report their progress: at a step, behind a gate, or in a tight loop."""
        record = self.record

        @app.task(name="steps", bind=True, soft_time_limit=20, time_limit=25, max_retries=0)
        def steps(ctx: TaskContext, name: str, fail: bool = False) -> str:
            ctx.set_progress(0.2, "step 1 of 5")
            ctx.set_progress(0.4, "step 2 of 5", rows=1200, stage="copy")
            record("reported", ctx, gate=name)
            self.wait_for_gate(name)
            if fail:
                raise ValueError(f"{name} died at step 2 of 5")
            return name

        @app.task(name="flood", bind=True, soft_time_limit=20, time_limit=25, max_retries=0)
        def flood(ctx: TaskContext, times: int) -> dict[str, float]:
            started = time.monotonic()
            for done in range(1, times + 1):
                ctx.set_progress(done / times, "flooding", done=done)
            return {"seconds": time.monotonic() - started}

        self.steps = steps
        self.flood = flood

    def wait_for_gate(self, name: str) -> None:
        """Return once the test opened the gate `name` (set its key), or after `_MAX_WAIT_S`."""
        key = gate_key(self.app.namespace, name)
        client = _client(self.app.broker_url)
        deadline = time.monotonic() + _MAX_WAIT_S
        while not client.exists(key) and time.monotonic() < deadline:
            time.sleep(_STEP_S)

    def record(self, event: str, ctx: TaskContext, **fields: Any) -> None:
        """Push one event about the running job: its id, attempt, queue, priority, processes."""
        entry = {
            "event": event,
            "job": ctx.id,
            "task": ctx.task,
            "attempt": ctx.attempt,
            "queue": ctx.queue,
            "priority": ctx.priority,
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "time": time.time(),
            **fields,
        }
        _client(self.app.broker_url).rpush(self.events_key, json.dumps(entry))


def build(broker_url: str, namespace: str, *, lease_s: float = DEFAULT_LEASE_S) -> Tasks:
    """A new app on `broker_url` and `namespace`, with every test task registered on it."""
    return Tasks(App(broker_url, namespace=namespace, lease=lease_s))


def _from_environment() -> App:
    lease_s = float(os.environ.get("ERRANDS_TEST_LEASE", DEFAULT_LEASE_S))
    return build(
        os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"], lease_s=lease_s
    ).app


__getattr__ = lazy_app(__name__, _from_environment)
