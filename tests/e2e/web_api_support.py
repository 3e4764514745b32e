"""One API server, one worker and tokens of each kind, shared by the tests of a module.

`api_stack` gives a namespace of its own (its keys deleted at the end), an ``errands api``
process and a worker process for ``tests.e2e.web_app:app`` in it, and tokens: admin, read,
read with payloads, and enqueue-only. Starting processes costs a second or two: a module
shares one stack, and each test sends its own jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from errands import App
from tests.e2e.web_app import build
from tests.e2e.web_support import ApiServer, api_server, make_token
from tests.integration.workers import WorkerProcess, Workers

__all__ = ["APP_SPEC", "Stack", "api_stack", "drop_namespace", "task", "task_path"]

APP_SPEC = "tests.e2e.web_app:app"


def task(short: str) -> str:
    """The registered name of web_app's task `short` (its default name: module and qualname)."""
    return f"tests.e2e.web_app.build.<locals>.{short}"


def task_path(short: str) -> str:
    """The enqueue route of web_app's task `short`."""
    return f"/v1/tasks/{task(short)}"


def drop_namespace(redis_url: str, namespace: str) -> None:
    """Delete every key of `namespace`."""
    client = redis.Redis.from_url(redis_url)
    try:
        batch = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])
    finally:
        client.close()


@dataclass
class Stack:
    """What `api_stack` started.

    Attributes:
        app: the app, as a producer in the test sees it.
        server: the API process.
        worker: the worker process (None when the stack was asked for none).
        tokens: by kind: ``admin``, ``read``, ``payloads`` (read and read:payloads),
            ``enqueue`` (enqueue:* only), ``add`` (enqueue of the add task only).
    """

    app: App
    server: ApiServer
    worker: WorkerProcess | None
    tokens: dict[str, str]

    def client(self, kind: str = "admin", **options: Any) -> httpx.Client:
        """An HTTP client on the server with the token of `kind` ("" for none)."""
        return self.server.client(self.tokens[kind] if kind else None, **options)


@contextmanager
def api_stack(redis_url: str, log_dir: Path, *, worker: bool = True) -> Iterator[Stack]:
    """Start the stack in a namespace of its own; stop it and delete its keys at the end."""
    namespace = f"errands-test-{uuid.uuid4().hex[:12]}"
    app = build(redis_url, namespace)
    tokens = {
        "admin": make_token(app, "admin"),
        "read": make_token(app, "read"),
        "payloads": make_token(app, "read", "read:payloads"),
        "enqueue": make_token(app, "enqueue:*"),
        "add": make_token(app, f"enqueue:{task('add')}"),
    }
    farm = Workers(redis_url, namespace, log_dir, app_spec=APP_SPEC)
    try:
        with api_server(app, log_dir) as server:
            started = farm.start("--concurrency", "2") if worker else None
            yield Stack(app, server, started, tokens)
    finally:
        farm.close()
        app.close()
        drop_namespace(redis_url, namespace)
