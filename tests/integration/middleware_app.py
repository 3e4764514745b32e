"""An app whose middleware records every hook it sees, with the process it ran in.

Each call pushes a JSON event on ``<namespace>:test:hooks``: the hook, the job (its id, or the
worker's), the task, what it saw (created, state), and ``os.getpid()``. A worker imports
``tests.integration.middleware_app:app``, built on first access from ``ERRANDS_BROKER_URL``
and ``ERRANDS_TEST_NAMESPACE``; a test builds the same app with `build` to send the jobs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

from errands import App, Retry, TaskContext
from errands.middleware import Execution, Middleware, Outgoing, WorkerInfo
from errands.result import ErrorInfo
from tests.integration.lazy_app import lazy_app

__all__ = ["Broken", "Recording", "build", "hooks_key"]

_STEP_S = 0.02
_MAX_WAIT_S = 20.0


def hooks_key(namespace: str) -> str:
    """The list the middleware of `namespace` pushes its events on."""
    return f"{namespace}:test:hooks"


class Recording(Middleware):
    """Pushes one event per hook call to Redis."""

    def __init__(self, broker_url: str, namespace: str) -> None:
        self._url = broker_url
        self._key = hooks_key(namespace)
        self._client: redis.Redis | None = None

    def _push(self, hook: str, job: str, task: str = "", **seen: Any) -> None:
        if self._client is None:  # opened in the process that calls, never across a fork
            self._client = redis.Redis.from_url(self._url)
        event = {"hook": hook, "job": job, "task": task, "pid": os.getpid(), **seen}
        self._client.rpush(self._key, json.dumps(event))

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        self._push("before_enqueue", job.id, job.task)
        return job

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        self._push("after_enqueue", job.id, job.task, created=created)

    def before_execute(self, ctx: TaskContext) -> None:
        self._push("before_execute", ctx.id, ctx.task, attempt=ctx.attempt)

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        self._push("after_execute", ctx.id, ctx.task, state=execution.state)

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        self._push("on_dead", job_id, error=error.type if error else None)

    def on_worker_start(self, worker: WorkerInfo) -> None:
        self._push("on_worker_start", worker.id)

    def on_worker_stop(self, worker: WorkerInfo) -> None:
        self._push("on_worker_stop", worker.id)


class Broken(Middleware):
    """Raises in every hook: the middleware after it still runs, and no job is lost."""

    def _fail(self, hook: str) -> None:
        raise RuntimeError(f"{hook} is broken")

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        self._fail("before_enqueue")
        return job

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        self._fail("after_enqueue")

    def before_execute(self, ctx: TaskContext) -> None:
        self._fail("before_execute")

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        self._fail("after_execute")

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        self._fail("on_dead")

    def on_worker_start(self, worker: WorkerInfo) -> None:
        self._fail("on_worker_start")

    def on_worker_stop(self, worker: WorkerInfo) -> None:
        self._fail("on_worker_stop")


def build(broker_url: str, namespace: str, *, broken: bool = False) -> App:
    """The app on `broker_url` and `namespace`, its tasks and its recording middleware.

    With `broken`, a middleware that raises in every hook runs before the recording one.
    """
    recording: list[Middleware] = [Recording(broker_url, namespace)]
    middleware = [Broken(), *recording] if broken else recording
    app = App(broker_url, namespace=namespace, lease=2, middleware=middleware)

    @app.task(name="add", soft_time_limit=5, time_limit=10)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="total", soft_time_limit=5, time_limit=10)
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task(name="fails_once", bind=True, max_retries=1, soft_time_limit=5, time_limit=10)
    def fails_once(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            raise Retry(countdown=0)
        return ctx.attempt

    @app.task(name="always_fails", max_retries=0, soft_time_limit=5, time_limit=10)
    def always_fails() -> None:
        raise KeyError("for good")

    @app.task(name="stops", bind=True, max_retries=1, soft_time_limit=20, time_limit=25)
    def stops(ctx: TaskContext) -> None:
        deadline = time.monotonic() + _MAX_WAIT_S
        while not ctx.is_cancelled() and time.monotonic() < deadline:
            time.sleep(_STEP_S)
        ctx.retry(countdown=0)  # asked to stop: the retry ends it cancelled

    return app


def _from_environment() -> App:
    broken = os.environ.get("ERRANDS_TEST_BROKEN_HOOKS") == "1"
    return build(
        os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"], broken=broken
    )


__getattr__ = lazy_app(__name__, _from_environment)
