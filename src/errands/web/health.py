"""The probes: ``/healthz`` (the API process answers) and ``/readyz`` (Redis and the consumers).

``/readyz`` is ready when Redis answers within `READY_TIMEOUT_S` and every queue with ready work
that is not paused has a live worker heard from within ``settings.ready_fetch_age_s``; else
503 with each reason. Both answer without a token unless ``settings.public_health`` is False
(then they need ``read``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.responses import Response

from errands.errors import BrokerUnavailable
from errands.web.auth import READ, authenticate
from errands.web.context import WebContext, web_context
from errands.web.errors import json_reply

if TYPE_CHECKING:
    from errands.app import App
    from errands.broker.views import QueueSummary

__all__ = ["READY_QUEUES", "READY_TIMEOUT_S", "readiness", "routes"]

#: How long ``/readyz`` waits for Redis before it says it is not ready.
READY_TIMEOUT_S = 2.0
#: Queues ``/readyz`` looks at (the first ones by name): a bound on its work.
READY_QUEUES = 1000

_READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Readiness",
    "properties": {
        "status": {"enum": ["ready", "unready"]},
        "detail": {"type": "string", "description": "the reasons, in one line"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "queues": {"type": "integer", "description": "queues looked at"},
    },
    "required": ["status", "detail", "reasons"],
}
_HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"status": {"const": "ok"}},
    "required": ["status"],
}


async def _queues(app: App) -> list[QueueSummary]:
    found: list[QueueSummary] = []
    after: str | None = None
    while len(found) < READY_QUEUES:
        page = await app.inspector.aqueues(after=after, limit=min(100, READY_QUEUES - len(found)))
        found += page.items
        if page.cursor is None or not page.items:
            break
        after = page.cursor
    return found


async def _unserved(app: App, queue: QueueSummary, max_age_s: float) -> str | None:
    """Why `queue`'s ready work has no live consumer (None: it has one)."""
    if queue.ready == 0 or queue.paused:
        return None
    if queue.consumers == 0:
        return f"queue {queue.name} has {queue.ready} ready job(s) and no live worker"
    workers = await app.inspector.aworkers(queue.name, limit=100)
    latest = max((w.seen_at for w in workers.items), default=None)
    if latest is None or time.time() - latest > max_age_s:
        return (
            f"queue {queue.name} has {queue.ready} ready job(s) and no worker heard from "
            f"within {max_age_s:g}s"
        )
    return None


async def readiness(app: App, max_age_s: float) -> tuple[list[str], int]:
    """The reasons the API is not ready (none: ready), and how many queues were looked at."""
    try:
        queues = await asyncio.wait_for(_queues(app), READY_TIMEOUT_S)
        reasons = await asyncio.wait_for(
            asyncio.gather(*(_unserved(app, q, max_age_s) for q in queues)), READY_TIMEOUT_S
        )
    except TimeoutError:
        return [f"Redis did not answer within {READY_TIMEOUT_S:g}s"], 0
    except BrokerUnavailable as error:
        return [f"Redis cannot serve: {error}"], 0
    return [reason for reason in reasons if reason is not None], len(queues)


async def _gate(request: Request, web: WebContext) -> None:
    if web.settings.public_health:
        return
    principal = await authenticate(request, web)
    if not principal.allows(READ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the token lacks the scope {READ!r}: create one with --scope {READ}",
        )


def routes(app: App) -> APIRouter:
    """The probes for `app`."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        response_model=None,
        responses={200: {"content": {"application/json": {"schema": _HEALTH_SCHEMA}}}},
    )
    async def healthz(
        request: Request, web: Annotated[WebContext, Depends(web_context)]
    ) -> Response:
        """The API process is up (it says nothing of Redis: see ``/readyz``)."""
        await _gate(request, web)
        return json_reply({"status": "ok"})

    @router.get(
        "/readyz",
        response_model=None,
        responses={
            200: {"content": {"application/json": {"schema": _READY_SCHEMA}}},
            503: {
                "description": "Not ready: Redis does not answer, or a queue with work has no "
                "live consumer.",
                "content": {"application/json": {"schema": _READY_SCHEMA}},
            },
        },
    )
    async def readyz(
        request: Request, web: Annotated[WebContext, Depends(web_context)]
    ) -> Response:
        """Redis answers, and every queue with ready work has a live consumer."""
        await _gate(request, web)
        reasons, looked = await readiness(app, web.settings.ready_fetch_age_s)
        document = {
            "status": "unready" if reasons else "ready",
            "detail": "; ".join(reasons) or "ready",
            "reasons": reasons,
            "queues": looked,
        }
        return json_reply(document, 503 if reasons else 200)

    return router
