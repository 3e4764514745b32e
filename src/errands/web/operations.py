"""The operator side of the API: queues, workers, dead jobs, schedules, and the sampler.

One router per noun (`queues`, `workers`, `dead`, `schedules`); this module gathers them and
gives the server's lifespan the throughput sampler (`errands.web.sampler`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from errands.web import dead, queues, sampler, schedules, workers

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["routes"]


def routes(app: App) -> APIRouter:
    """The operations routes for `app`; the router's lifespan samples the queues' throughput."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with sampler.sampling(app):
            yield

    router = APIRouter(lifespan=lifespan)
    for module in (queues, workers, dead, schedules):
        router.include_router(module.routes(app))
    return router
