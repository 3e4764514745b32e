"""What the pages read, each a bounded read of the inspector (pages of at most `PAGE` items).

Kept apart from the routes so that what a page costs is visible in one place: with 1,000,000
jobs queued and 100,000 dead, every read here is one page of a bounded size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from errands.broker.series import ThroughputPoint
from errands.broker.views import JobDetail, QueueSummary

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["HOUR_MINUTES", "PAGE", "QUEUES_SEARCHED", "find_job", "hour_of"]

#: Items one page of the dashboard lists (queues, workers, dead jobs).
PAGE = 50
#: Queues a job id is looked for in when its queue is not given (one read each).
QUEUES_SEARCHED = 100
#: Minutes of throughput a chart draws.
HOUR_MINUTES = 60


async def hour_of(app: App, queue: str) -> list[ThroughputPoint]:
    """The last hour of `queue`'s work, per minute, oldest first (one bounded read)."""
    return await app.inspector.athroughput(queue, HOUR_MINUTES)


async def find_job(app: App, job_id: str, queue: str | None) -> tuple[JobDetail | None, list[str]]:
    """Job `job_id` in `queue`, or in the first `QUEUES_SEARCHED` queues; and where it looked."""
    inspector = app.inspector
    if queue:
        names = [queue]
    else:
        known: list[QueueSummary] = (await inspector.aqueues(limit=QUEUES_SEARCHED)).items
        names = [q.name for q in known] or [app.default_queue]
    return await inspector.afind_job(names, job_id), names
