"""`BodyLimit`: 413 for a request body over the server's limit, before it is read whole.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a
body sent without one (chunked) is counted as it arrives and refused once it passes the limit,
so no route ever holds more than the limit of one request in memory.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge"]


def _message(limit: int) -> str:
    return f"the request body is over the limit of {limit} bytes: send less, or split a batch"


class BodyTooLarge(HTTPException):
    """The body passed the limit while it was read (a 413 wherever it is raised)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _message(limit))


def _reply(limit: int) -> tuple[Message, Message]:
    body = b'{"detail":"%s"}' % _message(limit).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """ASGI middleware refusing bodies over `max_bytes` with 413.

    Args:
        app: the app it wraps.
        max_bytes: the largest body taken.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, refusing a body over the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await self._refuse(send)
                    return
                break
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        start, body = _reply(self.max_bytes)
        await send(start)
        await send(body)
