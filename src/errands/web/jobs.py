"""Follow a job: ``GET /v1/jobs/{id}`` (``?wait=`` bounded), its events (SSE), and its cancel.

A job reads as ``errands status --json`` prints it (`errands.cli_inspect.job_document`). Its
arguments, headers and result are payloads: a token without ``read:payloads`` gets them as
null, with ``"payloads_hidden": true``. Without ``?queue=`` a job is looked for in each queue
the inspector lists (the first `SEARCH_QUEUES` of them) and the app's default queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from starlette.responses import Response, StreamingResponse

from errands.broker.types import CancelCode
from errands.broker.views import JobDetail
from errands.cli_inspect import job_document
from errands.errors import BrokerError
from errands.states import JobState
from errands.web.auth import OPERATE, READ, READ_PAYLOADS, Principal, require
from errands.web.context import WebContext, web_context
from errands.web.errors import json_reply, responses
from errands.web.schemas import inline_schema

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["EVENTS_MAX_S", "JOB_SCHEMA", "MAX_WAITERS", "SEARCH_QUEUES", "job_reply", "routes"]

#: Queues a read without ``?queue=`` looks in (besides the default queue).
SEARCH_QUEUES = 100
#: The longest an event stream stays open; it then ends with a ``timeout`` event (reconnect).
EVENTS_MAX_S = 600.0
#: Long-polls and event streams one server holds open at once; each holds a Redis connection
#: while it waits. Past it, a long-poll answers at once and a stream is refused with 503.
MAX_WAITERS = 256
#: How often a stream reads the job for progress between the wake-ups of its finish.
_EVENTS_TICK_S = 0.25

_ENDED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.DEAD})
_PAYLOADS = ("args", "kwargs", "headers", "result")
_MOMENT = {"type": ["string", "null"], "format": "date-time"}
_encoder = msgspec.json.Encoder()


def _job_schema() -> dict[str, Any]:
    schema = inline_schema(JobDetail)
    schema["title"] = "Job"
    schema["description"] = (
        "A job as errands status --json prints it; times in ISO 8601 (UTC). Without the "
        "scope read:payloads, args, kwargs, headers and result are null and payloads_hidden "
        "is true."
    )
    props = schema["properties"]
    for name in ("enqueued_at", "started_at", "due_at", "lease_expires_at", "died_at"):
        props[name] = dict(_MOMENT)
    props["finished_at"] = dict(_MOMENT)
    props["headers"] = {"anyOf": [{"type": "object"}, {"type": "null"}]}
    props["history"]["items"]["properties"]["ended_at"] = dict(_MOMENT)
    props["wait_s"] = {"type": ["number", "null"], "description": "enqueue to first start"}
    props["run_s"] = {"type": ["number", "null"], "description": "the latest attempt's run"}
    props["payloads_hidden"] = {"type": "boolean"}
    schema["required"] = [*schema["required"], "payloads_hidden"]
    return schema


JOB_SCHEMA = _job_schema()
_CANCEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Cancelled",
    "properties": {
        "id": {"type": "string"},
        "queue": {"type": "string"},
        "outcome": {
            "enum": ["cancelled", "requested", "removed_from_dead"],
            "description": "cancelled: it will never run; requested: it runs, and its worker "
            "stops it at its next heartbeat; removed_from_dead: it had just died",
        },
    },
    "required": ["id", "queue", "outcome"],
}


def job_reply(job: JobDetail, payloads: bool) -> dict[str, Any]:
    """`job` as the API shows it: `job_document`, its payloads nulled unless `payloads`."""
    document = job_document(job)
    if not payloads:
        for name in _PAYLOADS:
            document[name] = None
    document["payloads_hidden"] = not payloads
    return document


async def _find(app: App, job_id: str, queue: str | None) -> JobDetail:
    """The job `job_id` in `queue`, or in each queue there is; 404 when none holds it."""
    if queue is not None:
        names = [queue]
    else:
        page = await app.inspector.aqueues(limit=SEARCH_QUEUES)
        names = [q.name for q in page.items]
        if app.default_queue not in names:
            names.append(app.default_queue)
    job = await app.inspector.afind_job(names, job_id)
    if job is not None:
        return job
    where = f"queue {queue}" if queue else f"the queues {', '.join(names)}"
    raise HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"no job {job_id} in {where}: it never existed, or it finished and its result expired",
    )


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _encoder.encode(data) + b"\n\n"


async def _events(
    app: App, first: JobDetail, payloads: bool, waiters: asyncio.Semaphore
) -> AsyncIterator[bytes]:
    """`_follow` in one of the server's waiter slots; a Redis failure ends it with ``error``."""
    async with waiters:
        try:
            async for event in _follow(app, first, payloads):
                yield event
        except BrokerError as error:
            yield _sse("error", {"detail": f"Redis cannot serve: {error}; reconnect later"})


async def _follow(app: App, first: JobDetail, payloads: bool) -> AsyncIterator[bytes]:
    """A job's state changes and progress, then one final event; at most `EVENTS_MAX_S`."""
    job, queue, job_id = first, first.queue, first.id
    deadline = time.monotonic() + EVENTS_MAX_S
    yield _sse("state", {"state": job.state, "attempts": job.attempts})
    if job.progress is not None:
        yield _sse("progress", msgspec.to_builtins(job.progress))
    while job.state not in _ENDED:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            yield _sse("timeout", {"state": job.state, "reconnect": True})
            return
        # The finish wakes this at once; progress is read each tick.
        await app.broker.await_result(queue, job_id, min(_EVENTS_TICK_S, remaining))
        latest = await app.inspector.ajob(queue, job_id)
        if latest is None or latest.state is JobState.UNKNOWN:
            yield _sse("gone", {"detail": f"job {job_id} is gone (its result expired)"})
            return
        if (latest.state, latest.attempts) != (job.state, job.attempts):
            yield _sse("state", {"state": latest.state, "attempts": latest.attempts})
        if latest.progress is not None and latest.progress != job.progress:
            yield _sse("progress", msgspec.to_builtins(latest.progress))
        job = latest
    yield _sse("end", job_reply(job, payloads))


_JobId = Annotated[str, Path(min_length=1, max_length=200)]
_Queue = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9_.\-]{1,100}$",
        description="the job's queue (default: look in each queue)",
    ),
]


def routes(app: App) -> APIRouter:
    """The job routes for `app`."""
    router = APIRouter(tags=["jobs"])
    waiters = asyncio.Semaphore(MAX_WAITERS)

    @router.get(
        "/v1/jobs/{job_id}",
        response_model=None,
        responses={
            200: {
                "description": "The job.",
                "content": {"application/json": {"schema": JOB_SCHEMA}},
            },
            **responses(404, 422),
        },
    )
    async def read_job(
        job_id: _JobId,
        principal: Annotated[Principal, Depends(require(READ))],
        web: Annotated[WebContext, Depends(web_context)],
        queue: _Queue = None,
        wait: Annotated[
            float | None,
            Query(
                ge=0,
                le=3600,
                description="seconds to wait for the job to end (at most the server's max_wait_s)",
            ),
        ] = None,
    ) -> Response:
        """A job: state, attempts with their errors, progress, result or error, timings.

        With ``wait``, the reply comes as soon as the job ends, or after ``wait`` seconds
        (bounded by the server's ``max_wait_s``) with the job as it stands. Needs ``read``;
        arguments and result need ``read:payloads``.
        """
        job = await _find(app, job_id, queue)
        if wait and job.state not in _ENDED and not waiters.locked():
            async with waiters:
                timeout_s = min(wait, web.settings.max_wait_s)
                await app.broker.await_result(job.queue, job_id, timeout_s)
            job = await _find(app, job_id, job.queue)
        return json_reply(job_reply(job, principal.allows(READ_PAYLOADS)))

    @router.get(
        "/v1/jobs/{job_id}/events",
        response_model=None,
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-sent events: state (state, attempts), progress, then one "
                "of end (the job's document), timeout (reconnect), gone, or error (Redis).",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **responses(404, 422),
        },
    )
    async def job_events(
        job_id: _JobId,
        principal: Annotated[Principal, Depends(require(READ))],
        queue: _Queue = None,
    ) -> StreamingResponse:
        """A job's events as they happen, then a final one, then the stream ends.

        ``state`` at each change of state or attempt, ``progress`` at each report, then
        ``end`` with the job, or ``timeout`` after 600 s (reconnect), ``gone``, or ``error``.
        """
        job = await _find(app, job_id, queue)
        if waiters.locked():
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"this server holds {MAX_WAITERS} streams and long-polls open already: "
                "retry later, or poll GET /v1/jobs/{id}",
                headers={"Retry-After": "1"},
            )
        stream = _events(app, job, principal.allows(READ_PAYLOADS), waiters)
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post(
        "/v1/jobs/{job_id}/cancel",
        response_model=None,
        responses={
            200: {
                "description": "What the cancel did.",
                "content": {"application/json": {"schema": _CANCEL_SCHEMA}},
            },
            **responses(404, 409, 422),
        },
        dependencies=[Depends(require(OPERATE))],
    )
    async def cancel_job(job_id: _JobId, queue: _Queue = None) -> Response:
        """Cancel a job: a waiting one never runs; a running one is asked to stop.

        Needs ``operate``.
        """
        job = await _find(app, job_id, queue)
        if job.state in _ENDED:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"job {job_id} already ended ({job.state}): there is nothing to cancel",
            )
        code = await app.broker.acancel(job.queue, job_id)
        if code == CancelCode.NOT_FOUND:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"job {job_id} ended before it could be cancelled"
            )
        return json_reply({"id": job_id, "queue": job.queue, "outcome": code.name.lower()})

    return router
