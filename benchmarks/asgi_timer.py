"""`time_asgi`: one GET through an ASGI app in-process, timed from the call to its reply.

No network and no client library in between: the time is the app's own (its Redis round trips
included), from the moment it is called to its last body message, or to the first body message
that ends a server-sent event when `first_chunk` is asked for (a stream never ends by itself:
the request is then disconnected, as a browser leaving the page would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Timed", "time_asgi"]


@dataclass(frozen=True)
class Timed:
    """One request through the app.

    Attributes:
        seconds: from the call to the reply's end (or its first event).
        status: the HTTP status.
        size: body bytes received.
    """

    seconds: float
    status: int
    size: int


async def time_asgi(
    app: Any, target: str, headers: Mapping[str, str], *, first_chunk: bool = False
) -> Timed:
    """GET `target` (path and query) from `app` with `headers`; how long it took."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    done = asyncio.Event()
    disconnect = asyncio.Event()
    sent_request = False
    status = 0
    size = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            size += len(body)
            if not message.get("more_body", False) or (first_chunk and b"\n\n" in body):
                done.set()

    started = time.perf_counter()
    call = asyncio.ensure_future(app(scope, receive, send))
    finished = asyncio.ensure_future(done.wait())
    await asyncio.wait({call, finished}, return_when=asyncio.FIRST_COMPLETED)
    seconds = time.perf_counter() - started
    disconnect.set()
    finished.cancel()
    if not call.done():
        call.cancel()
    try:
        await call
    except asyncio.CancelledError:
        pass
    except Exception:
        status = status or 500
    return Timed(seconds, status, size)
