"""``/v1/workers``: the live workers, as ``errands workers --json`` lists them, a page at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query

from errands.cli_ops import worker_document
from errands.web.auth import READ, Principal, require
from errands.web.errors import PROTECTED, responses
from errands.web.ops_models import WorkerPageModel

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["routes"]


def routes(app: App) -> APIRouter:
    """The worker routes for `app`."""
    router = APIRouter(prefix="/v1/workers", tags=["workers"])

    @router.get("", response_model=WorkerPageModel, responses=responses(*PROTECTED))
    async def list_workers(
        _: Annotated[Principal, Depends(require(READ))],
        queue: Annotated[str | None, Query(description="only the workers serving it")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description="the cursor of the page before")] = None,
    ) -> dict[str, Any]:
        """The live workers, by id: host, pid, queues, pool, jobs held, started, last seen.

        A worker that stops cleanly leaves the list at once; one that died, once its lease
        passed.
        """
        if queue is None:
            page = await app.inspector.afleet(after=cursor, limit=limit)
        else:
            page = await app.inspector.aworkers(queue, after=cursor, limit=limit)
        return {"workers": [worker_document(w) for w in page.items], "cursor": page.cursor}

    return router
