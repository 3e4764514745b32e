"""What the pages read, each a bounded read of the inspector (pages of at most `PAGE` items).

Kept apart from the routes so that what a page costs is visible in one place: with 1,000,000
jobs queued and 100,000 dead, every read here is one page of a bounded size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from errands.broker.views import JobDetail, QueueSummary
from errands.web.dashboard.chart import Minute, MinuteCounts, empty_series

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["PAGE", "QUEUES_SEARCHED", "find_job", "hour_of", "summed"]

#: Items one page of the dashboard lists (queues, workers, dead jobs).
PAGE = 50
#: Queues a job id is looked for in when its queue is not given (one read each).
QUEUES_SEARCHED = 100


async def hour_of(app: App, queue: str) -> Sequence[Minute]:
    """The last hour of `queue`'s work, per minute, oldest first."""
    del app, queue  # the per-minute series comes with the ops work (Inspector.throughput)
    return empty_series(60)


def summed(series: Sequence[Sequence[Minute]]) -> list[MinuteCounts]:
    """The per-minute sums of several queues' series (aligned on the minute)."""
    totals: dict[float, list[int]] = {}
    for one in series:
        for m in one:
            counts = totals.setdefault(m.minute, [0, 0, 0, 0])
            counts[0] += m.enqueued
            counts[1] += m.succeeded
            counts[2] += m.retried
            counts[3] += m.dead
    return [MinuteCounts(minute, *totals[minute]) for minute in sorted(totals)]


async def find_job(app: App, job_id: str, queue: str | None) -> tuple[JobDetail | None, list[str]]:
    """Job `job_id` in `queue`, or in the first `QUEUES_SEARCHED` queues; and where it looked."""
    inspector = app.inspector
    if queue:
        names = [queue]
    else:
        known: list[QueueSummary] = (await inspector.aqueues(limit=QUEUES_SEARCHED)).items
        names = [q.name for q in known] or [app.default_queue]
    for name in names:
        job = await inspector.ajob(name, job_id)
        if job is not None:
            return job, names
    return None, names
