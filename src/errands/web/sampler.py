"""The API server's throughput sampler: every queue's counters, once a minute.

Workers sample the queues they serve (`errands.worker.upkeep`); an API server samples every
queue, so that the series goes on where no worker runs (jobs only enqueued). A minute is
written once however many samplers run (`Admin.sample_throughput`). A failure is logged and
tried again shortly: the series is derived data, never a reason for the server to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from errands.errors import ErrandsError

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["sample_all", "sampling", "sampling_loop"]

log = logging.getLogger("errands.web")

#: Seconds past the minute's start the sampler waits for: clocks of servers differ a little.
_PAST_MINUTE_S = 0.2
#: Seconds before trying again after a failure.
_RETRY_S = 10.0
_MAX_QUEUES_PAGE = 1000


async def sample_all(app: App) -> float:
    """Sample every queue of `app` once; seconds until the next minute starts."""
    next_in_s = 60.0
    after: str | None = None
    while True:
        page = await app.inspector.aqueues(after=after, limit=_MAX_QUEUES_PAGE)
        for queue in page.items:
            sampled = await app.broker.asample_throughput(queue.name)
            next_in_s = min(next_in_s, sampled.next_in_s)
        if page.cursor is None:
            return next_in_s
        after = page.cursor


async def sampling_loop(app: App) -> None:
    """Sample every queue soon after each minute starts, until cancelled."""
    failing = False
    while True:
        try:
            pause = await sample_all(app) + _PAST_MINUTE_S
        except (ErrandsError, OSError) as error:
            if not failing:
                log.warning(
                    "throughput sample failed (%s): trying again every %gs", error, _RETRY_S
                )
            failing, pause = True, _RETRY_S
        else:
            if failing:
                log.info("throughput sample works again")
            failing = False
        await asyncio.sleep(pause)


@asynccontextmanager
async def sampling(app: App) -> AsyncIterator[None]:
    """Run `sampling_loop` while the block runs (the API server's lifespan)."""
    task = asyncio.create_task(sampling_loop(app), name="errands-web-sampler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
