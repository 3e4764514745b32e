"""The app the scheduler integration tests run in real ``errands beat`` and worker processes.

One schedule, ``every-second``, fires ``beat.tick`` every second; each run pushes its job id and
nominal time (``ctx.scheduled_for``) on ``<namespace>:test:fires`` (`fires_key`).
"""

from __future__ import annotations

import json
import os
import time

import redis

from errands import App, TaskContext
from tests.integration.lazy_app import lazy_app

__all__ = ["build", "fires_key"]


def fires_key(namespace: str) -> str:
    """The list every run of `namespace`'s schedule pushes itself on."""
    return f"{namespace}:test:fires"


def build(broker_url: str, namespace: str) -> App:
    """A new app on `broker_url` and `namespace`, with its schedule."""
    app = App(broker_url, namespace=namespace)
    client = redis.Redis.from_url(broker_url)

    @app.periodic(every=1, id="every-second")
    @app.task(name="beat.tick", bind=True)
    def tick(ctx: TaskContext) -> None:
        assert ctx.scheduled_for is not None
        entry = {"job": ctx.id, "nominal": ctx.scheduled_for.timestamp(), "ran_at": time.time()}
        client.rpush(fires_key(namespace), json.dumps(entry))

    return app


def _from_environment() -> App:
    return build(os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"])


__getattr__ = lazy_app(__name__, _from_environment)
