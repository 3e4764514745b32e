"""What the supervisor needs from a pool of executors, whatever runs the jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from errands.worker.protocol import Finished, Job, Wait

__all__ = ["Assigned", "Pool", "PoolEvents"]


@dataclass(frozen=True, slots=True)
class Assigned:
    """A job given to a pool, with what the supervisor read from its envelope."""

    job: Job
    task: str
    hard_limit_s: float
    is_async: bool


@dataclass(frozen=True, slots=True)
class PoolEvents:
    """How a pool reports back to the supervisor.

    Attributes:
        finished: jobs that ended (including those a pool failed: time limit, lost child).
        give_back: jobs the pool will not run (not started when it stopped, or held by a child
            that was killed for another job's hard limit): released without spending an attempt.
        took: jobs an executor leased itself (queue, jobs, lease tokens, whether ready jobs were
            left behind them); the supervisor holds them from then on and answers how to run
            them.
        wait_ended: an executor stopped waiting for work on its own.
        died: a call an executor made to Redis sent jobs to the dead set (queue, id and
            outcome of each): a fetch of its own that reaped stalled jobs.
        progressed: running jobs reported their progress (job id and record of each, already
            throttled); best effort.
    """

    finished: Callable[[Sequence[Finished]], None]
    give_back: Callable[[Sequence[str]], None]
    took: Callable[[str, Sequence[Job], Sequence[str], bool], list[Assigned]]
    wait_ended: Callable[[], None]
    died: Callable[[str, Sequence[tuple[str, bytes]]], None]
    progressed: Callable[[Sequence[tuple[str, bytes]]], None] = lambda _reports: None


class Pool(Protocol):
    """Runs jobs for the supervisor."""

    def free_slots(self) -> int:
        """How many more jobs to fetch now (free slots plus prefetch)."""
        ...

    def idle_slots(self) -> int:
        """Places where a job sent now starts at once (no job queued ahead of it there).

        Jobs of limited tasks are fetched only into these: a limiter's slot is its start.
        """
        ...

    def hungry(self) -> bool:
        """True when an executor is running low: fetch now rather than wait for a bigger batch."""
        ...

    async def start(self) -> None:
        """Start executors; return when they can take jobs."""
        ...

    def submit(self, jobs: Sequence[Assigned]) -> None:
        """Start (or queue) these jobs."""
        ...

    def wait_for_work(self, wait: Wait) -> bool:
        """Have idle executors wait for work on Redis themselves; True if any does."""
        ...

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Tell the running jobs that they were asked to stop."""
        ...

    def started(self) -> set[str]:
        """The ids of the jobs that are running (or ran): not those only queued in the pool.

        A job killed with its worker before it started is not held against it (see the
        heartbeat); one that started is.
        """
        ...

    async def enforce_limits(self) -> None:
        """Deal with jobs past their hard time limit and with executors that died."""
        ...

    def stop(self) -> None:
        """Stop starting jobs: give back the queued ones; running ones finish."""
        ...

    async def kill(self) -> None:
        """End everything now: give back every job still held."""
        ...

    def idle(self) -> bool:
        """True when no job is running or queued in the pool."""
        ...

    async def close(self) -> None:
        """Wait for executors to exit after `stop` or `kill`."""
        ...
