"""``/v1/queues``: list queues, read one with its throughput, pause, resume and purge it.

The documents are those of ``errands queues --json``; a queue nobody used is 404, so that a
typo never pauses or purges a queue of its own (as ``errands pause`` refuses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from errands.broker.series import MAX_MINUTES
from errands.broker.views import QueueSummary
from errands.cli_inspect import queue_document
from errands.cli_ops import PURGE_BATCH
from errands.cli_output import iso_json
from errands.web.auth import ADMIN, OPERATE, READ, Principal, require
from errands.web.errors import PROTECTED, responses
from errands.web.ops_models import PausedModel, PurgedModel, QueueDetailModel, QueuePageModel

if TYPE_CHECKING:
    from errands.app import App
    from errands.broker.series import ThroughputPoint

__all__ = ["MAX_PURGE_BATCHES", "routes", "throughput_document"]

#: Batches of `PURGE_BATCH` jobs one purge request deletes at most (10,000 jobs, a few
#: seconds of Redis at worst); ``more`` in the reply says to call again.
MAX_PURGE_BATCHES = 40
#: Minutes of throughput a queue's document holds.
_SERIES_MINUTES = 60

Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]


def throughput_document(point: ThroughputPoint) -> dict[str, Any]:
    """One minute of throughput as JSON: its start in ISO 8601, its four counts."""
    return {
        "minute": iso_json(point.minute),
        "enqueued": point.enqueued,
        "succeeded": point.succeeded,
        "retried": point.retried,
        "dead": point.dead,
    }


def _used(summary: QueueSummary) -> bool:
    """A queue somebody used: it has counters, jobs, a consumer or a pause."""
    return bool(
        summary.stats
        or summary.ready
        or summary.delayed
        or summary.active
        or summary.dead
        or summary.consumers
        or summary.paused
    )


async def _registered(app: App, name: str) -> bool:
    """`name` is in the registry of queues producers and workers used (``GET /v1/queues``)."""
    from errands.broker.redis import RedisBroker  # noqa: PLC0415 - Redis only when asked
    from errands.broker.redis.keys import queues_registry_key  # noqa: PLC0415

    broker = app.broker
    if isinstance(broker, RedisBroker):
        key = queues_registry_key(broker.namespace)
        return bool(await broker.aclient.sismember(key, name))
    return True  # no registry to ask: the summary's counts are all there is


async def known_queue(app: App, name: str) -> QueueSummary:
    """The summary of queue `name`; 404 when nobody used it (not one the list shows)."""
    summary = await app.inspector.aqueue(name)
    known = _used(summary) or await _registered(app, name)
    if not known:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no queue {name!r}: nobody sent to it or served it (GET /v1/queues lists them)",
        )
    return summary


def routes(app: App) -> APIRouter:
    """The queue routes for `app`."""
    router = APIRouter(prefix="/v1/queues", tags=["queues"])

    @router.get("", response_model=QueuePageModel, responses=responses(*PROTECTED))
    async def list_queues(
        _: Annotated[Principal, Depends(require(READ))],
        limit: Limit = 100,
        cursor: Annotated[str | None, Query(description="the cursor of the page before")] = None,
    ) -> dict[str, Any]:
        """Every queue producers or workers used, by name, a page at a time."""
        page = await app.inspector.aqueues(after=cursor, limit=limit)
        return {"queues": [queue_document(q) for q in page.items], "cursor": page.cursor}

    @router.get("/{name}", response_model=QueueDetailModel, responses=responses(*PROTECTED, 404))
    async def get_queue(
        name: str,
        _: Annotated[Principal, Depends(require(READ))],
        minutes: Annotated[
            int, Query(ge=1, le=MAX_MINUTES, description="minutes of throughput, oldest first")
        ] = _SERIES_MINUTES,
    ) -> dict[str, Any]:
        """One queue: its jobs by state, its workers, and its throughput per minute (an hour)."""
        summary = await known_queue(app, name)
        series = await app.inspector.athroughput(name, minutes)
        return {**queue_document(summary), "throughput": [throughput_document(p) for p in series]}

    async def set_paused(name: str, paused: bool) -> dict[str, Any]:
        await known_queue(app, name)
        changed = await app.broker.aset_paused(name, paused)
        return {"queue": name, "paused": paused, "changed": changed}

    @router.post("/{name}/pause", response_model=PausedModel, responses=responses(*PROTECTED, 404))
    async def pause_queue(
        name: str, _: Annotated[Principal, Depends(require(OPERATE))]
    ) -> dict[str, Any]:
        """Pause a queue: workers fetch nothing from it (running jobs finish) until resumed."""
        return await set_paused(name, True)

    @router.post("/{name}/resume", response_model=PausedModel, responses=responses(*PROTECTED, 404))
    async def resume_queue(
        name: str, _: Annotated[Principal, Depends(require(OPERATE))]
    ) -> dict[str, Any]:
        """Resume a paused queue."""
        return await set_paused(name, False)

    @router.post("/{name}/purge", response_model=PurgedModel, responses=responses(*PROTECTED, 404))
    async def purge_queue(
        name: str,
        _: Annotated[Principal, Depends(require(ADMIN))],
        delayed: Annotated[bool, Query(description="delete the delayed jobs too")] = False,
    ) -> dict[str, Any]:
        """Delete the queue's ready jobs (and delayed ones) for good; running jobs stay.

        In batches of 250, as ``errands purge``, up to 10,000 jobs a request: ``more`` says
        that jobs were left, call again.
        """
        summary = await known_queue(app, name)
        total = summary.ready + (summary.delayed if delayed else 0)
        deleted, more = 0, False
        # Producers may go on sending: stop once as many as were counted are gone.
        for _batch in range(MAX_PURGE_BATCHES):
            if deleted >= total:
                break
            batch = await app.broker.apurge_ready(name, delayed=delayed, limit=PURGE_BATCH)
            if batch == 0:
                break
            deleted += batch
        else:
            more = deleted < total
        return {"queue": name, "deleted": deleted, "delayed": delayed, "more": more}

    return router
