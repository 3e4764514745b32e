"""The dead jobs page: a filtered page of a queue's dead set, and its actions.

Retry or delete one job, or all that match a filter, at most `BATCH` per press.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from errands.broker.views import DeadFilter
from errands.web.auth import ADMIN, OPERATE, READ_PAYLOADS
from errands.web.dashboard.reads import PAGE
from errands.web.dashboard.render import page
from errands.web.dashboard.session import (
    Current,
    Posted,
    require_scope,
)

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["BATCH", "SCANNED_PAGES", "add_dead"]

#: Dead jobs one "retry all" or "delete all" press acts on.
BATCH = 100
#: Pages of the dead set one such press looks through for matching jobs (each page looks at
#: `errands.broker.views.DEAD_SCAN` entries): a bound on one request's work.
SCANNED_PAGES = 4


def _filter(task: str, error_type: str) -> DeadFilter:
    return DeadFilter(task=task.strip() or None, error_type=error_type.strip() or None)


def add_dead(router: APIRouter, app: App) -> None:
    """Add the dead jobs page and its actions to `router`."""

    @router.get("/dead", response_class=HTMLResponse)
    async def dead_page(
        request: Request,
        current: Current,
        queue: str = "",
        task: str = "",
        error_type: str = "",
        newest: bool = True,
        cursor: str | None = None,
    ) -> HTMLResponse:
        """A page of dead jobs of a queue, filtered by task and error type."""
        name = queue or app.default_queue
        where = _filter(task, error_type)
        found = await app.inspector.adead(
            name, where=where, newest_first=newest, cursor=cursor or None, limit=PAGE
        )
        kept = {"queue": name, "task": task, "error_type": error_type}
        more = None
        if found.cursor:
            more = "/dead?" + urlencode(
                {**kept, "newest": str(newest).lower(), "cursor": found.cursor}
            )
        return page(
            request,
            "dead.html",
            session=current,
            queue=name,
            task=task,
            error_type=error_type,
            newest=newest,
            jobs=found.items,
            more=more,
            filtered=where != DeadFilter(),
            here="/dead?" + urlencode(kept),
            can_operate=current.allows(OPERATE),
            can_admin=current.allows(ADMIN),
            payloads=current.allows(READ_PAYLOADS),
            batch=BATCH,
            notice=request.query_params.get("notice", ""),
        )

    @router.post("/dead/retry")
    async def retry(posted: Posted) -> Response:
        """Retry one dead job (``id``) or up to `BATCH` that match the filter (``operate``)."""
        current, form = posted
        require_scope(current, OPERATE)
        name = form.get("queue") or app.default_queue
        ids = await _chosen(app, name, form)
        moved = await app.broker.aredrive(name, ids) if ids else []
        return _back(form, name, f"retried {len(moved)} of {len(ids)} dead jobs")

    @router.post("/dead/delete")
    async def delete(posted: Posted) -> Response:
        """Delete one dead job (``id``) or up to `BATCH` that match the filter (``admin``)."""
        current, form = posted
        require_scope(current, ADMIN)
        name = form.get("queue") or app.default_queue
        ids = await _chosen(app, name, form)
        deleted = await app.broker.apurge(name, ids) if ids else 0
        return _back(form, name, f"deleted {deleted} of {len(ids)} dead jobs")


async def _chosen(app: App, queue: str, form: dict[str, str]) -> list[str]:
    """The ids a press acts on: the one given, or up to `BATCH` matching the form's filter."""
    one = form.get("id", "").strip()
    if one:
        return [one]
    if form.get("all") != "1":
        raise HTTPException(400, "say which dead job (id), or all that match (all=1)")
    where = _filter(form.get("task", ""), form.get("error_type", ""))
    ids: list[str] = []
    cursor = None
    for _ in range(SCANNED_PAGES):
        found = await app.inspector.adead(queue, where=where, cursor=cursor, limit=BATCH - len(ids))
        ids += [job.id for job in found.items]
        cursor = found.cursor
        if cursor is None or len(ids) >= BATCH:
            break
    return ids


def _back(form: dict[str, str], queue: str, notice: str) -> RedirectResponse:
    kept = {"queue": queue, "task": form.get("task", ""), "error_type": form.get("error_type", "")}
    if form.get("back_to_job"):
        target = f"/jobs/{quote(form['back_to_job'])}?queue={quote(queue)}&notice={quote(notice)}"
        return RedirectResponse(target, status_code=303)
    return RedirectResponse(f"/dead?{urlencode({**kept, 'notice': notice})}", status_code=303)
