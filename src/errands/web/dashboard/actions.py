"""The actions of the queue and job pages: pause, resume, purge a queue; cancel a job.

Each is a POST with the session's CSRF token, and needs its scope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import RedirectResponse

from errands.broker.types import CancelCode
from errands.web.auth import ADMIN, OPERATE
from errands.web.dashboard.pages import job_id_of
from errands.web.dashboard.session import Posted, require_scope

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["PURGE_BATCH", "add_actions"]

#: Ready jobs one purge press deletes (as ``errands purge`` does per batch).
PURGE_BATCH = 1000


def add_actions(router: APIRouter, app: App) -> None:
    """Add the queue and job actions to `router`."""

    @router.post("/queues/{name}/pause")
    async def pause_queue(name: str, posted: Posted) -> Response:
        """Pause a queue (scope ``operate``): workers fetch nothing from it."""
        current, form = posted
        require_scope(current, OPERATE)
        paused = form.get("paused", "1") == "1"
        await app.broker.aset_paused(name, paused)
        said = "paused" if paused else "resumed"
        return _back(f"/queues/{name}", f"queue {name} {said}")

    @router.post("/queues/{name}/purge")
    async def purge_queue(name: str, posted: Posted) -> Response:
        """Delete up to 1,000 ready jobs of a queue for good (scope ``admin``)."""
        current, form = posted
        require_scope(current, ADMIN)
        if form.get("confirm") != name:
            raise HTTPException(400, f"type the queue's name ({name}) to confirm the purge")
        deleted = await app.broker.apurge_ready(name, limit=PURGE_BATCH)
        more = " (press again for more)" if deleted == PURGE_BATCH else ""
        return _back(f"/queues/{name}", f"deleted {deleted} ready jobs{more}")

    @router.post("/jobs/{job_id}/cancel")
    async def cancel_job(job_id: str, posted: Posted) -> Response:
        """Cancel a job (scope ``operate``): a waiting one never runs, a running one is asked."""
        current, form = posted
        require_scope(current, OPERATE)
        queue = form.get("queue") or app.default_queue
        code = await app.broker.acancel(queue, job_id_of(job_id))
        said = _CANCELLED.get(code, "nothing to cancel: it finished, or never existed")
        return _back(f"/jobs/{job_id}", said, queue=queue)


_CANCELLED = {
    CancelCode.CANCELLED: "cancelled: it will not run",
    CancelCode.REQUESTED: "cancel requested: the running task is asked to stop",
    CancelCode.REMOVED_FROM_DEAD: "cancelled: removed from the dead set",
}


def _back(path: str, notice: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({**query, 'notice': notice})}", status_code=303)
