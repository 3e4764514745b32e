"""The read pages: overview, a queue, a job, search."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from errands.broker.views import DeadFilter, JobDetail
from errands.cli_inspect import job_document
from errands.cli_output import short_call
from errands.states import JobState
from errands.web.auth import ADMIN, OPERATE, READ_PAYLOADS
from errands.web.dashboard.chart import chart, summed
from errands.web.dashboard.reads import PAGE, QUEUES_SEARCHED, find_job, hour_of
from errands.web.dashboard.render import page
from errands.web.dashboard.session import Current
from errands.workflow import next_job_id

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["add_pages", "job_id_of"]

#: The longest job id a page looks up.
_MAX_JOB_ID = 200


def job_id_of(value: str) -> str:
    """`value` when it may be a job id (1 to 200 printable characters); else 400."""
    if not 1 <= len(value) <= _MAX_JOB_ID or not value.isprintable():
        raise HTTPException(400, f"{value[:60]!r} is not a job id (1-200 printable characters)")
    return value


def add_pages(router: APIRouter, app: App) -> None:
    """Add the read pages to `router`."""

    @router.get("/", response_class=HTMLResponse)
    async def overview(
        request: Request, current: Current, after: str | None = None
    ) -> HTMLResponse:
        """Every queue (a page of them), the hour's throughput, the live workers."""
        inspector = app.inspector
        queues, fleet = await asyncio.gather(
            inspector.aqueues(after=after, limit=PAGE), inspector.afleet(limit=PAGE)
        )
        hours = await asyncio.gather(*(hour_of(app, q.name) for q in queues.items))
        per_queue = {q.name: chart(h) for q, h in zip(queues.items, hours, strict=True)}
        return page(
            request,
            "overview.html",
            session=current,
            queues=queues,
            charts=per_queue,
            total=chart(summed(hours)),
            fleet=fleet,
        )

    @router.get("/queues/{name}", response_class=HTMLResponse)
    async def queue_page(
        request: Request, current: Current, name: str, after: str | None = None
    ) -> HTMLResponse:
        """One queue: its counts, its hour, its workers, its newest dead jobs."""
        inspector = app.inspector
        summary, workers, dead, hour = await asyncio.gather(
            inspector.aqueue(name),
            inspector.aworkers(name, after=after, limit=PAGE),
            inspector.adead(name, newest_first=True, limit=10),
            hour_of(app, name),
        )
        return page(
            request,
            "queue.html",
            session=current,
            q=summary,
            workers=workers,
            dead=dead,
            hour=chart(hour),
            can_operate=current.allows(OPERATE),
            can_admin=current.allows(ADMIN),
            notice=request.query_params.get("notice", ""),
        )

    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    async def job_page(
        request: Request, current: Current, job_id: str, queue: str | None = None
    ) -> HTMLResponse:
        """One job: state, arguments and result (``read:payloads``), attempts, progress."""
        job, searched = await find_job(app, job_id_of(job_id), queue)
        if job is None:
            raise HTTPException(
                404,
                f"no job {job_id} in queue(s) {', '.join(searched)}: it never existed, or it "
                "finished and its result expired",
            )
        return page(
            request,
            "job.html",
            session=current,
            job=job,
            document=job_document(job),
            payloads=current.allows(READ_PAYLOADS),
            call=short_call(job.args, job.kwargs),
            next_step=await _next_step(app, job),
            traceback=_last_traceback(job),
            can_operate=current.allows(OPERATE),
            can_admin=current.allows(ADMIN),
            notice=request.query_params.get("notice", ""),
        )

    @router.get("/search", response_class=HTMLResponse)
    async def search(
        request: Request,
        current: Current,
        q: Annotated[str, Query(max_length=200)] = "",
        queue: str = "",
        task: str = "",
        state: str = "",
        error_type: str = "",
    ) -> Response:
        """Find a job by id; or jobs by task, state and error type, within bounded reads."""
        if q.strip():
            job, searched = await find_job(app, job_id_of(q.strip()), queue or None)
            if job is not None:
                return RedirectResponse(f"/jobs/{job.id}?queue={job.queue}", status_code=303)
            return page(
                request,
                "search.html",
                session=current,
                form=request.query_params,
                missing=f"no job {q.strip()} in queue(s) {', '.join(searched)}",
                active=[],
            )
        if state in ("", "dead") and (task or error_type or state == "dead"):
            where = DeadFilter(task=task or None, error_type=error_type or None)
            target = f"/dead?queue={queue or app.default_queue}"
            target += f"&task={where.task or ''}&error_type={where.error_type or ''}"
            return RedirectResponse(target, status_code=303)
        active = await _active(app, queue, task) if state == "active" else []
        return page(
            request,
            "search.html",
            session=current,
            form=request.query_params,
            missing="",
            active=active,
            searched_active=state == "active",
            states=[s.value for s in (JobState.ACTIVE, JobState.DEAD)],
            queues_searched=QUEUES_SEARCHED,
        )


async def _next_step(app: App, job: JobDetail) -> JobDetail | None:
    """The chain step after `job`, when it was sent (one read, in the job's own queue)."""
    return await app.inspector.ajob(job.queue, next_job_id(job.id))


def _last_traceback(job: JobDetail) -> str | None:
    if job.error is not None and job.error.traceback:
        return job.error.traceback
    for attempt in reversed(job.history):
        if attempt.error is not None and attempt.error.traceback:
            return attempt.error.traceback
    return None


async def _active(app: App, queue: str, task: str) -> list[JobDetail]:
    """The jobs the live workers hold (a page of workers, at most `PAGE` jobs looked up)."""
    inspector = app.inspector
    fleet = await (inspector.aworkers(queue, limit=PAGE) if queue else inspector.afleet(limit=PAGE))
    held = [job_id for worker in fleet.items for job_id in worker.holding][:PAGE]
    queues = [queue] if queue else sorted({n for w in fleet.items for n in w.queues})
    # One round trip per queue for all the held jobs; a job is listed under the first queue
    # that knows it.
    by_id: dict[str, JobDetail] = {}
    for name in queues:
        wanted = [job_id for job_id in held if job_id not in by_id]
        if not wanted:
            break
        for job_id, job in zip(wanted, await inspector.ajobs(name, wanted), strict=True):
            if job is not None:
                by_id[job_id] = job
    found = [by_id[job_id] for job_id in held if job_id in by_id]
    return [job for job in found if not task or job.task == task]
