"""The schedules page and its actions (pause with a note, resume, trigger now).

It shows each schedule's next and last fire, missed fires, pause and note, and which ones code
owns. The actions need the scope ``operate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from errands.errors import ScheduleNotFound
from errands.web.auth import OPERATE
from errands.web.dashboard.render import page
from errands.web.dashboard.session import (
    Current,
    Posted,
    require_scope,
)

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["MAX_NOTE", "SHOWN", "add_schedules"]

#: Schedules the page lists (the store holds them in one hash: they are few by nature).
SHOWN = 500
#: Characters of a pause note kept.
MAX_NOTE = 500


def add_schedules(router: APIRouter, app: App) -> None:
    """Add the schedules page and its actions to `router`."""

    @router.get("/schedules", response_class=HTMLResponse)
    async def schedules_page(request: Request, current: Current) -> HTMLResponse:
        """Every schedule (up to `SHOWN`), with its fires and pause."""
        found = await run_in_threadpool(app.schedules.list)
        return page(
            request,
            "schedules.html",
            session=current,
            schedules=found[:SHOWN],
            more=max(len(found) - SHOWN, 0),
            can_operate=current.allows(OPERATE),
            notice=request.query_params.get("notice", ""),
        )

    @router.post("/schedules/{schedule_id}/{action}")
    async def change(schedule_id: str, action: str, posted: Posted) -> Response:
        """Pause (with the form's ``note``), resume or trigger a schedule."""
        current, form = posted
        require_scope(current, OPERATE)
        try:
            if action == "pause":
                note = form.get("note", "").strip()[:MAX_NOTE]
                await run_in_threadpool(app.schedules.pause, schedule_id, note)
                notice = f"paused {schedule_id}"
            elif action == "resume":
                since: Literal["last", "now"] = "now" if form.get("from") == "now" else "last"
                await run_in_threadpool(app.schedules.resume, schedule_id, since)
                notice = f"resumed {schedule_id} from {since}"
            elif action == "trigger":
                handle = await run_in_threadpool(app.schedules.trigger, schedule_id)
                notice = f"triggered {schedule_id}: job {handle.id}"
            else:
                raise HTTPException(404, f"no action {action!r}: pause, resume or trigger")
        except ScheduleNotFound as missing:
            raise HTTPException(404, str(missing)) from None
        return RedirectResponse(f"/schedules?notice={quote(notice)}", status_code=303)
