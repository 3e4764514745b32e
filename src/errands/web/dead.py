"""``/v1/dead``: list dead jobs, retry them (rate-limited), delete one.

Figures (`RETRY_PER_REQUEST`, `RETRY_PER_MINUTE`): a retry request moves at most 100 jobs,
and one token moves at most 1,000 per minute, counted in Redis (``lua/budget.lua``) so that
every API process spends the same budget; beyond it, 429 with ``Retry-After``. A request is
charged what it asks for (its ids, or its ``limit``) before anything moves.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from errands.broker.names import check_queue_name
from errands.broker.views import DeadFilter, DeadJob
from errands.cli_dead import dead_document
from errands.states import JobState
from errands.web.auth import ADMIN, OPERATE, READ, READ_PAYLOADS, Principal, require
from errands.web.errors import PROTECTED, responses
from errands.web.ops_models import DeadPageModel, DeadRetryRequest, DeletedModel, RetriedModel

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["RETRY_PER_MINUTE", "RETRY_PER_REQUEST", "RETRY_SCAN_PAGES", "routes"]

#: Jobs one retry request moves at most.
RETRY_PER_REQUEST = 100
#: Jobs one token retries per minute at most, across every API process.
RETRY_PER_MINUTE = 1000
#: Pages of the dead set (of up to 250 entries each) a retry by filter looks through.
RETRY_SCAN_PAGES = 20
#: Dead jobs one page of the API lists at most (each may carry its arguments).
DEAD_PAGE_MAX = 200


async def _with_arguments(app: App, jobs: list[DeadJob]) -> list[dict[str, Any]]:
    """The documents of `jobs` (of one queue) with their arguments, read in one round trip."""
    details = await app.inspector.ajobs(jobs[0].queue, [j.id for j in jobs]) if jobs else []
    documents = []
    for job, detail in zip(jobs, details, strict=True):
        document = dead_document(job)
        document["args"] = detail.args if detail else None
        document["kwargs"] = detail.kwargs if detail else None
        documents.append(document)
    return documents


async def _matching(app: App, queue: str, where: DeadFilter, limit: int) -> list[str]:
    """The ids of the oldest dead jobs of `queue` that `where` matches, up to `limit`."""
    found: list[str] = []
    cursor: str | None = None
    for _page in range(RETRY_SCAN_PAGES):
        page = await app.inspector.adead(
            queue, where=where, cursor=cursor, limit=limit - len(found)
        )
        found += [j.id for j in page.items]
        cursor = page.cursor
        if cursor is None or len(found) >= limit:
            break
    return found


async def _spend(app: App, principal: Principal, cost: int) -> int:
    """Charge `cost` jobs to the token's budget of this minute; 429 when it has not that many."""
    from errands.broker.redis import RedisBroker  # noqa: PLC0415 - Redis only when asked
    from errands.broker.redis.budget import budget_key, spend  # noqa: PLC0415

    broker = app.broker
    if not isinstance(broker, RedisBroker):
        return RETRY_PER_MINUTE  # tokens live in Redis: no API runs without it
    key = budget_key(app.namespace, "dead-retry", principal.token.id)
    spent = await spend(broker, key, cost, RETRY_PER_MINUTE, 60.0)
    if not spent.granted:
        wait = max(1, math.ceil(spent.resets_in_s))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"this token may retry {RETRY_PER_MINUTE} dead jobs a minute and has {spent.left} "
            f"left: ask for fewer, or try again in {wait}s",
            headers={"Retry-After": str(wait)},
        )
    return spent.left


def routes(app: App) -> APIRouter:
    """The dead-job routes for `app`."""
    router = APIRouter(prefix="/v1/dead", tags=["dead jobs"])

    @router.get("", response_model=DeadPageModel, responses=responses(*PROTECTED))
    async def list_dead(
        principal: Annotated[Principal, Depends(require(READ))],
        queue: Annotated[str | None, Query(description="default: the app's default queue")] = None,
        task: Annotated[str | None, Query(description="only the jobs of this task")] = None,
        error_type: Annotated[str | None, Query(description="only this error type")] = None,
        newest_first: bool = False,
        limit: Annotated[int, Query(ge=1, le=DEAD_PAGE_MAX)] = 50,
        cursor: Annotated[str | None, Query(description="the cursor of the page before")] = None,
    ) -> dict[str, Any]:
        """Dead jobs with their errors, oldest first (or newest), filtered, a page at a time.

        Their arguments come only with the ``read:payloads`` scope. A filtered page looks at
        a bounded stretch of the dead set: it may hold fewer than `limit` (even none) and
        still have a cursor: follow it.
        """
        name = queue or app.default_queue
        where = DeadFilter(task or None, error_type or None)
        page = await app.inspector.adead(
            name, where=where, newest_first=newest_first, cursor=cursor, limit=limit
        )
        if principal.allows(READ_PAYLOADS):
            jobs = await _with_arguments(app, page.items)
        else:
            jobs = [dead_document(j) for j in page.items]
        return {"queue": name, "jobs": jobs, "cursor": page.cursor}

    @router.post("/retry", response_model=RetriedModel, responses=responses(*PROTECTED, 400, 429))
    async def retry_dead(
        request: DeadRetryRequest, principal: Annotated[Principal, Depends(require(OPERATE))]
    ) -> dict[str, Any]:
        """Move dead jobs back to ready: the given ids, or the oldest a filter matches.

        At most 100 jobs a request, 1,000 a minute per token (429 with Retry-After beyond).
        """
        if (request.ids is None) == (request.filter is None):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                'give either "ids" (the jobs to retry) or "filter" (with "limit"), not both',
            )
        check_queue_name(request.queue)  # before the budget is spent
        asked = len(request.ids) if request.ids is not None else request.limit
        if asked > RETRY_PER_REQUEST or asked == 0:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"a request retries 1 to {RETRY_PER_REQUEST} jobs, not {asked}: send several",
            )
        left = await _spend(app, principal, asked)
        if request.ids is not None:
            ids = list(dict.fromkeys(request.ids))
        else:
            rule = request.filter
            where = DeadFilter(rule.task, rule.error_type) if rule else DeadFilter()
            ids = await _matching(app, request.queue, where, request.limit)
        moved = await app.broker.aredrive(request.queue, ids) if ids else []
        moved_set = set(moved)
        return {
            "queue": request.queue,
            "retried": moved,
            "not_dead": [i for i in ids if i not in moved_set] if request.ids else [],
            "budget_left": left,
        }

    @router.delete("/{job_id}", response_model=DeletedModel, responses=responses(*PROTECTED, 404))
    async def delete_dead(
        job_id: str,
        _: Annotated[Principal, Depends(require(ADMIN))],
        queue: Annotated[str | None, Query(description="default: the app's default queue")] = None,
    ) -> dict[str, Any]:
        """Delete one dead job for good: its record goes (its failed outcome expires later)."""
        name = queue or app.default_queue
        job = await app.inspector.ajob(name, job_id)
        if job is None or job.state is not JobState.DEAD:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"no dead job {job_id!r} in queue {name!r}: GET /v1/dead?queue={name} lists them",
            )
        deleted = await app.broker.apurge(name, [job_id])
        return {"queue": name, "id": job_id, "deleted": deleted == 1}

    return router
