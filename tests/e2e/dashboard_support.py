"""Helpers of the dashboard tests: a logged-in HTTP client, the CSRF token a page carries, the
numbers a live stream sends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from errands import App
from tests.e2e import web_app
from tests.e2e.web_support import ApiServer

__all__ = ["csrf_of", "first_numbers", "logged_in", "task_name"]

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@contextmanager
def logged_in(server: ApiServer, token: str) -> Iterator[httpx.Client]:
    """A client of `server` whose session cookie holds `token` (after a real POST /login)."""
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        reply = client.post("/login", data={"token": token, "next": "/"})
        assert reply.status_code == 303, reply.text
        yield client


def csrf_of(page: str) -> str:
    """The CSRF form token a dashboard page carries."""
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


def first_numbers(client: httpx.Client, path: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The data of the first ``numbers`` event the stream at `path` sends."""
    deadline = time.monotonic() + timeout_s
    with client.stream("GET", path, timeout=timeout_s) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in stream.iter_lines():
            if time.monotonic() > deadline:
                break
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "numbers":
                document: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return document
    raise AssertionError(f"no numbers event from {path} within {timeout_s:g}s")


def task_name(app: App, short: str) -> str:
    """The registered name of `tests.e2e.web_app`'s task `short` (``fail``, ``slow``...)."""
    built = web_app.build(app.broker_url, app.namespace)
    try:
        return next(name for name in built.tasks if name.rsplit(".", 1)[-1] == short)
    finally:
        built.close()
