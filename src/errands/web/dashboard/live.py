"""Live updates by server-sent events: the numbers a page shows, sent again every second.

A stream lasts at most `STREAM_S` seconds (the browser's EventSource then reconnects, which
checks the session again), checks its token every `RECHECK_S` seconds (a revoked token ends it
with an ``ended`` event), and stops as soon as the client leaves. While Redis cannot be read
it sends ``unavailable`` events, and the page says so, until Redis answers again; a read
the inspector refuses (a queue name it does not allow) ends it with a ``refused`` event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from errands.broker.views import QueueSummary
from errands.errors import ArgumentError, BrokerUnavailable, ConfigurationError
from errands.web.auth import READ_PAYLOADS, authenticate_token
from errands.web.context import WebContext, web_context
from errands.web.dashboard.reads import PAGE, find_job
from errands.web.dashboard.session import COOKIE, Current

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["MAX_STREAMS", "RECHECK_S", "STREAM_S", "TICK_S", "add_live", "queue_numbers"]

#: Seconds between two updates.
TICK_S = 1.0
#: Seconds a stream lasts before the browser reconnects.
STREAM_S = 300.0
#: Seconds between two checks of the stream's token.
RECHECK_S = 10.0
#: Live streams one server sends at once (each costs a read a second); more are refused (429).
MAX_STREAMS = 64

_UNAVAILABLE = (BrokerUnavailable, RedisConnectionError, RedisTimeoutError, ConnectionError)

Context = Annotated[WebContext, Depends(web_context)]


def queue_numbers(q: QueueSummary) -> dict[str, Any]:
    """What a page shows live of a queue."""
    return {
        "ready": q.ready,
        "delayed": q.delayed,
        "active": q.active,
        "dead": q.dead,
        "paused": q.paused,
        "consumers": q.consumers,
        "oldest_ready_age_s": q.oldest_ready_age_s,
    }


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: ".encode() + msgspec.json.encode(data) + b"\n\n"


async def _stream(
    request: Request, web: WebContext, read: Callable[[], Awaitable[Any]]
) -> AsyncIterator[bytes]:
    token = request.cookies.get(COOKIE, "")
    client = request.client.host if request.client else ""
    started = checked = time.monotonic()
    yield b"retry: 2000\n\n"
    while time.monotonic() - started < STREAM_S:
        if await request.is_disconnected():
            return
        if time.monotonic() - checked >= RECHECK_S:
            checked = time.monotonic()
            try:
                await authenticate_token(web, token, client)
            except HTTPException as refused:
                if refused.status_code != status.HTTP_503_SERVICE_UNAVAILABLE:
                    yield _event("ended", str(refused.detail))
                    return
            except _UNAVAILABLE:
                pass  # Redis is away: the read below says so
        try:
            yield _event("numbers", await read())
        except _UNAVAILABLE as gone:
            yield _event("unavailable", f"Redis cannot be reached ({type(gone).__name__})")
        except (ArgumentError, ConfigurationError) as wrong:
            yield _event("refused", str(wrong)[:300])
            return
        await asyncio.sleep(TICK_S)


class _Streams:
    """The live streams one server holds open, at most `MAX_STREAMS`."""

    def __init__(self) -> None:
        self.open = 0

    def respond(self, stream: AsyncIterator[bytes]) -> StreamingResponse:
        """`stream` as an event-stream response, counted while it lasts (429 beyond the cap)."""
        if self.open >= MAX_STREAMS:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"this server already sends {MAX_STREAMS} live streams: close some dashboard "
                "tabs, or reload later",
                headers={"Retry-After": "10"},
            )
        self.open += 1

        async def counted() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream:
                    yield chunk
            finally:
                self.open -= 1

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(counted(), media_type="text/event-stream", headers=headers)


def add_live(router: APIRouter, app: App) -> None:
    """Add the event streams to `router`."""
    streams = _Streams()
    _respond = streams.respond

    @router.get("/live/overview")
    async def live_overview(
        request: Request, current: Current, web: Context, after: str | None = None
    ) -> StreamingResponse:
        """The overview's numbers: each queue of its page, and how many workers are live."""
        del current  # the dependency checked the session

        async def read() -> dict[str, Any]:
            queues, fleet = await asyncio.gather(
                app.inspector.aqueues(after=after, limit=PAGE), app.inspector.afleet(limit=PAGE)
            )
            return {
                "queues": {q.name: queue_numbers(q) for q in queues.items},
                "workers": len(fleet.items),
                "at": time.time(),
            }

        return _respond(_stream(request, web, read))

    @router.get("/live/queues/{name}")
    async def live_queue(
        request: Request, current: Current, web: Context, name: str
    ) -> StreamingResponse:
        """One queue's numbers."""
        del current

        async def read() -> dict[str, Any]:
            q = await app.inspector.aqueue(name)
            return {"queues": {q.name: queue_numbers(q)}, "at": time.time()}

        return _respond(_stream(request, web, read))

    @router.get("/live/jobs/{job_id}")
    async def live_job(
        request: Request, current: Current, web: Context, job_id: str, queue: str | None = None
    ) -> StreamingResponse:
        """One job's state, attempts and progress (its result with ``read:payloads``)."""
        payloads = current.allows(READ_PAYLOADS)

        async def read() -> dict[str, Any]:
            job, _ = await find_job(app, job_id, queue)
            if job is None:
                return {"job": {"state": "unknown"}}
            shown: dict[str, Any] = {"state": str(job.state), "attempts": job.attempts}
            if job.progress is not None and job.progress.fraction is not None:
                shown["progress"] = f"{job.progress.fraction:.0%} {job.progress.message}"
            if payloads and job.result is not None:
                shown["result"] = msgspec.json.encode(job.result).decode()[:2000]
            return {"job": shown, "at": time.time()}

        return _respond(_stream(request, web, read))
