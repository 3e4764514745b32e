"""The app the limiter integration tests run in real worker processes.

- ``limits.call`` shares the limiter ``partner`` (20 starts a second): each run pushes its job
  id, attempt and start time on ``<namespace>:test:calls``.
- ``limits.hold`` is capped at 3 running at once by ``pool``: each run counts itself in and out
  of ``<namespace>:test:running`` and pushes how many ran with it, then holds its slot until the
  key ``<namespace>:test:go`` exists (or its own ``seconds`` pass).
- ``limits.refused`` meets its service's own limit once (``RateLimited(retry_after=0.5)``),
  then succeeds; it shares ``partner``.
"""

from __future__ import annotations

import json
import os
import time

import redis

from errands import App, RateLimited, TaskContext
from tests.integration.lazy_app import lazy_app

__all__ = ["build", "calls_key", "go_key", "running_key", "starts_key"]

RATE = "20/s"
CAP = 3


def calls_key(namespace: str) -> str:
    """The list each run of ``limits.call`` and ``limits.refused`` pushes itself on."""
    return f"{namespace}:test:calls"


def running_key(namespace: str) -> str:
    """The counter of ``limits.hold`` runs under way."""
    return f"{namespace}:test:running"


def starts_key(namespace: str) -> str:
    """The list of how many ``limits.hold`` runs were under way as each one started."""
    return f"{namespace}:test:starts"


def go_key(namespace: str) -> str:
    """Set it to let every ``limits.hold`` run end."""
    return f"{namespace}:test:go"


def build(broker_url: str, namespace: str, lease: float = 30.0) -> App:
    """A new app on `broker_url` and `namespace`, with its limiters and tasks."""
    app = App(broker_url, namespace=namespace, lease=lease)
    client = redis.Redis.from_url(broker_url)
    app.limiter("partner", rate=RATE)
    app.limiter("pool", concurrency=CAP)

    def record(ctx: TaskContext, what: str) -> None:
        entry = {"job": ctx.id, "attempt": ctx.attempt, "at": time.time(), "what": what}
        client.rpush(calls_key(namespace), json.dumps(entry))

    @app.task(name="limits.call", bind=True, limits=["partner"])
    def call(ctx: TaskContext) -> None:
        record(ctx, "call")

    @app.task(name="limits.refused", bind=True, limits=["partner"])
    def refused(ctx: TaskContext) -> str:
        if client.incr(f"{namespace}:test:refused:{ctx.id}") == 1:
            record(ctx, "refused")
            raise RateLimited(retry_after=0.5)
        record(ctx, "accepted")
        return "done"

    @app.task(name="limits.hold", bind=True, limits=["pool"], time_limit=60)
    def hold(ctx: TaskContext, seconds: float) -> None:
        with_me = client.incr(running_key(namespace))
        try:
            client.rpush(starts_key(namespace), json.dumps({"job": ctx.id, "n": with_me}))
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not client.exists(go_key(namespace)):
                time.sleep(0.01)
        finally:
            client.decr(running_key(namespace))

    return app


def _from_environment() -> App:
    lease = float(os.environ.get("ERRANDS_TEST_LEASE", "30"))
    return build(os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"], lease)


__getattr__ = lazy_app(__name__, _from_environment)
