"""The calls of ``lua/progress.lua``: writing the progress of running jobs, reading one job's.

Pure builders and parsers, as in `calls.py`: `RedisBroker` only executes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from errands.broker.redis.calls import Arg, Call
from errands.broker.redis.keys import QueueKeys
from errands.broker.redis.library import function_name
from errands.broker.types import ProgressReport
from errands.progress import Progress, read_progress

__all__ = ["REPORTS_PER_CALL", "progress_of", "report"]

#: Reports per call of the write (the library takes up to 1,000): a call of this many records,
#: 4 KiB at most each, holds Redis well under a millisecond.
REPORTS_PER_CALL = 200


def report(keys: QueueKeys, reports: Sequence[ProgressReport]) -> Call[int]:
    """Build the write of up to `REPORTS_PER_CALL` jobs' progress (stored under live leases)."""
    if len(reports) > REPORTS_PER_CALL:
        raise ValueError(f"a progress call holds at most {REPORTS_PER_CALL} reports")
    args: list[Arg] = [len(reports)]
    for r in reports:
        args += (r.id, r.token, r.record)
    return Call(function_name("progress"), keys.all, tuple(args), int)


def progress_of(keys: QueueKeys, job_id: str) -> Call[Progress | None]:
    """Build the read of one job's progress."""

    def parse(reply: Any) -> Progress | None:
        return read_progress(reply or None)

    return Call(function_name("progress_of"), keys.all, (job_id,), parse, read_only=True)
