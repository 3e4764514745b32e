"""What operators use: `Inspector`, the one read model, and `Admin`, the changes they make.

The CLI reads through the inspector (``errands queues``, ``errands status``, ``errands dead
list``), and so will the HTTP API and the dashboard: what they show is computed once, here.
Every read has a blocking form and its ``a``-prefixed async twin, and every list is paged and
bounded (`errands.broker.views.MAX_PAGE`): a page costs the same with 1,000,000 jobs queued
as with 10.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from errands.broker.views import (
    DeadFilter,
    DeadJob,
    JobDetail,
    LimiterState,
    Page,
    QueueSummary,
    WorkerSummary,
)

if TYPE_CHECKING:
    from errands.broker.series import Sampled, ThroughputPoint
    from errands.limits import Limiter

__all__ = ["Admin", "Inspector"]


class Inspector(Protocol):
    """The operator's read model of a broker: queues, jobs, workers, dead jobs."""

    def queues(self, *, after: str | None = None, limit: int = 100) -> Page[QueueSummary]:
        """Every queue producers or workers have used, by name; the page after queue `after`."""
        ...

    async def aqueues(self, *, after: str | None = None, limit: int = 100) -> Page[QueueSummary]:
        """Async twin of `queues`."""
        ...

    def queue(self, name: str) -> QueueSummary:
        """One queue at a glance (counts are zero for a queue nobody used)."""
        ...

    async def aqueue(self, name: str) -> QueueSummary:
        """Async twin of `queue`."""
        ...

    def job(self, queue: str, job_id: str) -> JobDetail | None:
        """A job's whole record; None when the broker knows nothing of it (any more)."""
        ...

    async def ajob(self, queue: str, job_id: str) -> JobDetail | None:
        """Async twin of `job`."""
        ...

    def jobs(self, queue: str, job_ids: Sequence[str]) -> list[JobDetail | None]:
        """`job` of each of `job_ids`, in their order, read together (one round trip)."""
        ...

    async def ajobs(self, queue: str, job_ids: Sequence[str]) -> list[JobDetail | None]:
        """Async twin of `jobs`."""
        ...

    def find_job(self, queues: Sequence[str], job_id: str) -> JobDetail | None:
        """The job `job_id` in the first of `queues` that knows it, all read in one round trip.

        For an id whose queue is not known (``errands status``, ``GET /v1/jobs/{id}``); None
        when none of them does.
        """
        ...

    async def afind_job(self, queues: Sequence[str], job_id: str) -> JobDetail | None:
        """Async twin of `find_job`."""
        ...

    def workers(
        self, queue: str, *, after: str | None = None, limit: int = 100
    ) -> Page[WorkerSummary]:
        """The live workers that serve `queue`, by id; the page after `after`.

        Live: heard from within its lease (a worker that stops cleanly leaves at once).
        """
        ...

    async def aworkers(
        self, queue: str, *, after: str | None = None, limit: int = 100
    ) -> Page[WorkerSummary]:
        """Async twin of `workers`."""
        ...

    def fleet(self, *, after: str | None = None, limit: int = 100) -> Page[WorkerSummary]:
        """Every live worker of the namespace, whatever its queues, by id; the page after `after`.

        A page costs one bounded read per queue: each queue's page of `limit` workers after
        `after`, merged (`errands.broker.fleet`).
        """
        ...

    async def afleet(self, *, after: str | None = None, limit: int = 100) -> Page[WorkerSummary]:
        """Async twin of `fleet`."""
        ...

    def dead(
        self,
        queue: str,
        *,
        where: DeadFilter | None = None,
        newest_first: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[DeadJob]:
        """The dead jobs of `queue` by time of death, oldest first (or newest), filtered.

        A page looks at a bounded stretch of the dead set: with a filter that few jobs match,
        it may hold fewer than `limit` (even none) and still have a cursor: follow it.
        """
        ...

    async def adead(
        self,
        queue: str,
        *,
        where: DeadFilter | None = None,
        newest_first: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[DeadJob]:
        """Async twin of `dead`."""
        ...

    def limiter(
        self, queue: str, limiter: Limiter, *, cursor: str | None = None, limit: int = 100
    ) -> LimiterState:
        """Where `limiter` stands for the jobs of `queue`: tokens, running, waiting, per key.

        A limiter with keys lists a page of them (those with a record, as a scan finds them:
        a page may hold fewer than `limit` and still have a cursor).
        """
        ...

    async def alimiter(
        self, queue: str, limiter: Limiter, *, cursor: str | None = None, limit: int = 100
    ) -> LimiterState:
        """Async twin of `limiter`."""
        ...

    def throughput(
        self, queue: str, minutes: int = 60, *, until: float | None = None
    ) -> list[ThroughputPoint]:
        """The queue's counts per minute for its last `minutes` whole minutes, oldest first.

        Args:
            queue: the queue.
            minutes: how many minutes, 1 to `errands.broker.series.MAX_MINUTES` (120).
            until: the minutes before the one that holds this time (Unix seconds; None: the
                broker's clock, so the minutes before the one under way).

        A minute nobody sampled (`Admin.sample_throughput`) is a gap: its counts are None.
        """
        ...

    async def athroughput(
        self, queue: str, minutes: int = 60, *, until: float | None = None
    ) -> list[ThroughputPoint]:
        """Async twin of `throughput`."""
        ...


class Admin(Protocol):
    """The changes an operator makes to a queue: redrive, purge, purge ready jobs, pause.

    And the one write behind a read: the throughput sample (`sample_throughput`).
    """

    def redrive(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> list[str]:
        """Move dead jobs (the given ones, else the oldest `limit`) back to ready.

        The chords of the queue's dead members are failed first (`adeliver_chord_failures`):
        a redriven chord member runs on its own, and its chord stays failed.
        """
        ...

    async def aredrive(
        self, queue: str, job_ids: Sequence[str] = (), limit: int = 100
    ) -> list[str]:
        """Async twin of `redrive`."""
        ...

    def purge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Delete dead jobs (the given ones, else the oldest `limit`) for good."""
        ...

    async def apurge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Async twin of `purge`."""
        ...

    def purge_ready(self, queue: str, *, delayed: bool = False, limit: int = 1000) -> int:
        """Delete up to `limit` (at most 1,000) of the queue's ready jobs for good.

        With `delayed`, its delayed jobs go too, after the ready ones. Their records go with
        them (no result is stored: a waiter sees a job that never was); active jobs are never
        touched. Returns how many were deleted: call again until it returns 0.
        """
        ...

    async def apurge_ready(self, queue: str, *, delayed: bool = False, limit: int = 1000) -> int:
        """Async twin of `purge_ready`."""
        ...

    def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause (workers fetch nothing) or resume a queue; False when it already was so."""
        ...

    async def aset_paused(self, queue: str, paused: bool) -> bool:
        """Async twin of `set_paused`."""
        ...

    def sample_throughput(self, queue: str, *, now: float | None = None) -> Sampled:
        """File the queue's counters under the current minute, unless it has a sample already.

        Workers and API servers call it about once a minute for their queues (the reply says
        when the next minute starts); the first call of each minute writes, the others change
        nothing. Samples older than two hours are dropped (`errands.broker.series`).

        Args:
            queue: the queue.
            now: the time to file the sample under (Unix seconds; None: the broker's clock).
        """
        ...

    async def asample_throughput(self, queue: str, *, now: float | None = None) -> Sampled:
        """Async twin of `sample_throughput`."""
        ...
