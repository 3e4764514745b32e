"""`FastEnqueue`: ``POST /v1/tasks/<name>`` answered before FastAPI's routing.

Enqueueing is the request other services make most, often from a synchronous call that is
handing its work off: it should cost the API server as little as the work itself. FastAPI's
routing and dependency resolution cost about as much as checking the token, checking the
arguments and sending the job together, so this middleware gives a request for a registered
task straight to that task's route endpoint (the same function, so the route in /openapi.json
is what answers) and turns its errors into the same replies as the exception handlers
(`errands.web.errors.reply_for`). Every other request passes through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from errands.web.errors import reply_for

__all__ = ["TASKS_PREFIX", "Endpoint", "FastEnqueue"]

log = logging.getLogger("errands.web")

#: Where the enqueue routes live: ``/v1/tasks/<name>``.
TASKS_PREFIX = "/v1/tasks/"

Endpoint = Callable[[Request], Awaitable[Response]]


class FastEnqueue:
    """ASGI middleware serving the enqueue routes of `endpoints` itself.

    Args:
        app: the app it wraps (everything else goes there).
        endpoints: task name -> its enqueue route's endpoint; read at each request, so it
            may be filled after the middleware is added (routes are included later).
    """

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer an enqueue of a registered task; pass anything else on."""
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(TASKS_PREFIX):
                endpoint = self.endpoints.get(path[len(TASKS_PREFIX) :])
                if endpoint is not None:
                    await self._serve(endpoint, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except ClientDisconnect:
            # The caller left before its body arrived: nothing was sent, no one to answer.
            log.debug("client left during %s", scope["path"])
            return
        except Exception as error:  # noqa: BLE001 - every error becomes its reply
            response = await reply_for(request, error)
        await response(scope, receive, send)
