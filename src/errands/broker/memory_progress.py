"""The progress functions of the memory broker, as ``lua/progress.lua`` does them on Redis.

A `QueueState` holds the ``progress`` key's data (job id -> record); its transitions delete a
job's progress with the job, as the Lua library's do. These two read and write it.
"""

from __future__ import annotations

from collections.abc import Sequence

from errands.broker.memory_state import MAX_BATCH, QueueState
from errands.broker.types import ProgressReport
from errands.errors import BrokerError
from errands.progress import MAX_BYTES, Progress, read_progress

__all__ = ["progress_of", "report"]


def report(q: QueueState, reports: Sequence[ProgressReport]) -> int:
    """errands_v1_progress: store each record whose job is active under its token."""
    if len(reports) > MAX_BATCH:
        # As the library answers, before it writes anything.
        raise BrokerError(f"at most {MAX_BATCH} progress reports per call, not {len(reports)}")
    stored = 0
    for r in reports:
        m = q.meta.get(r.id)
        if m is None or m.state != "active" or str(m.deliveries) != r.token:
            continue
        if len(r.record) <= MAX_BYTES:
            q.progress[r.id] = r.record
            stored += 1
    return stored


def progress_of(q: QueueState, job_id: str) -> Progress | None:
    """errands_v1_progress_of: one job's progress, read."""
    return read_progress(q.progress.get(job_id))
