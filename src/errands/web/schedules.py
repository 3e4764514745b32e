"""``/v1/schedules``: list schedules, pause one with a note, resume it, trigger it now.

The list says for each its next and last fire, missed fires, its pause and note, and whether
code owns it (``origin``).

`errands.schedule.manager.Schedules` is blocking: each call runs in a worker thread, off the
event loop. The documents are those of ``errands schedules list --json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
from fastapi import APIRouter, Body, Depends, HTTPException, status
from starlette.concurrency import run_in_threadpool

from errands.cli_schedules import schedule_document
from errands.errors import ScheduleNotFound
from errands.web.auth import OPERATE, READ, Principal, require
from errands.web.errors import PROTECTED, responses
from errands.web.ops_models import (
    ScheduleChangeRequest,
    ScheduleListModel,
    ScheduleModel,
    TriggeredModel,
)

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["routes"]

T = TypeVar("T")


async def _off_loop(call: Callable[[], T]) -> T:
    """Run a blocking `Schedules` call in a thread; unknown schedule -> 404, Redis down -> 503."""
    try:
        return await run_in_threadpool(call)
    except ScheduleNotFound as error:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{error} (GET /v1/schedules lists them)"
        ) from None


def _store_from_code(app: App, schedule_id: str) -> None:
    """Store a schedule of `app`'s code that no scheduler stored yet, so that it can pause.

    The list shows such a schedule (from the code); a pause needs its stored definition. This
    is what the leading scheduler does when it starts, and it never replaces an operator's.
    """
    definition = app.periodic_schedules.get(schedule_id)
    if definition is None or schedule_id in app.broker.schedules.read().defs:
        return
    app.broker.schedules.define("code", [(schedule_id, msgspec.json.encode(definition))])


def routes(app: App) -> APIRouter:
    """The schedule routes for `app`."""
    router = APIRouter(prefix="/v1/schedules", tags=["schedules"])

    def one(schedule_id: str) -> dict[str, Any]:
        return schedule_document(app.schedules.get(schedule_id), json=True)

    @router.get("", response_model=ScheduleListModel, responses=responses(*PROTECTED))
    async def list_schedules(_: Annotated[Principal, Depends(require(READ))]) -> dict[str, Any]:
        """Every schedule, by id: when it fires, its next and last fire, fires missed."""
        found = await _off_loop(app.schedules.list)
        return {"schedules": [schedule_document(i, json=True) for i in found]}

    @router.post(
        "/{schedule_id}/pause",
        response_model=ScheduleModel,
        responses=responses(*PROTECTED, 400, 404),
    )
    async def pause_schedule(
        schedule_id: str,
        _: Annotated[Principal, Depends(require(OPERATE))],
        change: Annotated[ScheduleChangeRequest | None, Body()] = None,
    ) -> dict[str, Any]:
        """Pause a schedule: no fire until it is resumed; the note says why, for others."""
        note = change.note if change else ""

        def pause() -> dict[str, Any]:
            _store_from_code(app, schedule_id)
            app.schedules.pause(schedule_id, note)
            return one(schedule_id)

        return await _off_loop(pause)

    @router.post(
        "/{schedule_id}/resume", response_model=ScheduleModel, responses=responses(*PROTECTED, 404)
    )
    async def resume_schedule(
        schedule_id: str, _: Annotated[Principal, Depends(require(OPERATE))]
    ) -> dict[str, Any]:
        """Resume a paused schedule from its last fire (its catch-up policy handles the rest)."""

        def resume() -> dict[str, Any]:
            app.schedules.resume(schedule_id)
            return one(schedule_id)

        return await _off_loop(resume)

    @router.post(
        "/{schedule_id}/trigger",
        response_model=TriggeredModel,
        status_code=status.HTTP_202_ACCEPTED,
        responses=responses(*PROTECTED, 404),
    )
    async def trigger_schedule(
        schedule_id: str, _: Annotated[Principal, Depends(require(OPERATE))]
    ) -> dict[str, Any]:
        """Fire a schedule now, outside its times: 202 with the job it sent."""
        result = await _off_loop(lambda: app.schedules.trigger(schedule_id))
        return {"schedule": schedule_id, "id": result.id, "queue": result.queue}

    return router
