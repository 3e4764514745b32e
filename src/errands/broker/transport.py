"""`Transport`: how jobs move. Producers send them; workers lease, renew, settle, give back.

Producer operations come in pairs (a blocking call and its ``a``-prefixed async twin); worker
operations are async only, since the worker's supervisor runs an event loop. Every operation on
a job is atomic in the broker: a job is always in exactly one of ready, delayed, active, dead or
finished.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol, runtime_checkable

from errands.broker.settings import BrokerSettings
from errands.broker.types import (
    AckCode,
    CancelCode,
    Enqueued,
    Fetched,
    HeartbeatReply,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    ProgressReport,
)
from errands.errors import BrokerError

__all__ = ["DirectLine", "DirectWaits", "Transport"]


class Transport(Protocol):
    """Moving jobs between producers and workers, with leases, acks and waiting for work."""

    settings: BrokerSettings

    # Producer side: blocking calls and their async twins.
    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Add jobs to `queue`; duplicates (same id, same live idempotency key) are not added."""
        ...

    async def aenqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Async twin of `enqueue`."""
        ...

    async def acontinue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """`aenqueue` for the next steps of finished jobs; a full broker still takes them.

        Each replaces the job that made it, and refusing it would hold back that job's ack: a
        full Redis refuses new work, not the work that drains it.
        """
        ...

    def enqueue_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued] | BrokerError]:
        """`enqueue` for each (queue, jobs) batch, in order; streamed where the broker can.

        Each batch is all or nothing: its answers, or the error that refused it (the others
        may still have been taken).
        """
        ...

    def cancel(self, queue: str, job_id: str) -> CancelCode:
        """Cancel a queued or scheduled job, ask a running one to stop, or drop a dead one."""
        ...

    async def acancel(self, queue: str, job_id: str) -> CancelCode:
        """Async twin of `cancel`."""
        ...

    def close(self) -> None:
        """Close the blocking connections."""
        ...

    # Worker side: async only.
    async def fetch(
        self, queue: str, n: int, lease_ms: int, worker_id: str, *, limited: int | None = None
    ) -> Fetched:
        """Lease up to `n` ready jobs; also promotes due delayed jobs and reaps expired leases.

        `limited`: at most this many of them jobs of limited tasks (None: any number). A worker
        passes the places where a job would start at once, so a job a limiter lets out starts
        when it is let out, not after the jobs queued ahead of it in the worker.
        """
        ...

    async def ack(self, queue: str, outcomes: Sequence[Outcome]) -> list[AckCode]:
        """Settle finished jobs; an outcome with a stale token is refused (`AckCode.STALE`)."""
        ...

    async def ack_and_fetch(
        self,
        queue: str,
        outcomes: Sequence[Outcome],
        n: int,
        lease_ms: int,
        worker_id: str,
        *,
        limited: int | None = None,
    ) -> tuple[list[AckCode] | BrokerError, Fetched]:
        """`ack` then `fetch`, in one round trip where the broker can.

        The fetch may succeed where the ack failed: its jobs are leased to the worker either
        way, so the ack's error comes back in place of its codes, for the caller to raise once
        it holds them. An error of the fetch is raised (the ack may have run: send it again).
        """
        ...

    async def heartbeat(
        self,
        queue: str,
        worker_id: str,
        worker_info: bytes,
        leases: Sequence[Lease],
        lease_ms: int,
        started: Collection[str] = (),
    ) -> HeartbeatReply:
        """Renew every lease the worker holds in `queue`, and record the worker as alive.

        `started`: the ids among them that are running or ran. Only a lease seen started can
        expire as a stall; one lost before is not held against its job (its worker died).
        """
        ...

    async def leave(self, queue: str, worker_id: str) -> bool:
        """Take a worker that stops off `queue`'s worker list; False when it was not listed."""
        ...

    async def release(self, queue: str, leases: Sequence[Lease]) -> int:
        """Give jobs back to ready without spending an attempt."""
        ...

    async def report_progress(self, queue: str, reports: Sequence[ProgressReport]) -> int:
        """Store what running jobs of `queue` reported of their progress; returns how many.

        Each report replaces its job's progress, but only while the job is active under the
        report's lease token: a worker that lost the lease never overwrites the progress of a
        newer delivery, nor brings back that of a job that finished. A record over
        `errands.progress.MAX_BYTES` is skipped. Many reports go in one round trip. The broker
        keeps a job's progress while the job lives (retries, the dead set) and deletes it with
        the job (success, cancel, purge, the dead set's cap and age).
        """
        ...

    async def maintain(self, queue: str, owner: str, lock_ms: int) -> MaintenanceReport | None:
        """Bounded housekeeping; None when another worker holds the maintenance lock."""
        ...

    async def wait_and_fetch(
        self,
        queue: str,
        timeout_s: float,
        n: int,
        lease_ms: int,
        worker_id: str,
        *,
        limited: int | None = None,
    ) -> Fetched:
        """`wait_for_work` on one queue, then `fetch`, in one round trip where it can."""
        ...

    async def wait_for_work(self, queues: Sequence[str], timeout_s: float) -> bool:
        """Block until a job may be ready in one of `queues`, or `timeout_s` passes."""
        ...

    async def interrupt_wait(self, queue: str) -> None:
        """Add a wake token to `queue`, so that a wait on it (ours, at shutdown) ends now."""
        ...

    async def aclose(self) -> None:
        """Close the async connections of the running event loop."""
        ...


class DirectLine(Protocol):
    """One worker child's own line to the broker: it waits for work, leases and acks by itself.

    Opened by the child, used from its main thread only, for one queue, lease length and worker.
    Every method raises `BrokerError` (a `BrokerUnavailable` for what passes) when the broker
    fails it; the child then closes the line and leaves the work to its supervisor.
    """

    def lease(self, watch_fd: int) -> tuple[Fetched, bool]:
        """Block until a job is leased to this line or `watch_fd` becomes readable.

        At most one job is leased. When `watch_fd` wins, the wait is cut short in the broker
        and whatever it had already leased is still returned: a job is never left leased to
        nobody.

        Returns:
            what the fetch brought (no job, or one), and whether `watch_fd` is readable.
        """
        ...

    def ack(self, outcome: Outcome) -> AckCode:
        """Settle a job this line leased: one call, which also publishes its result."""
        ...

    def close(self) -> None:
        """Close the line (a wait in progress on the broker side ends with it)."""
        ...


@runtime_checkable
class DirectWaits(Protocol):
    """A transport whose worker children can wait for work on it themselves (optional).

    A job sent to an idle worker then reaches the process that runs it in one hop, and its
    result leaves from there. A worker whose broker lacks it waits in its supervisor.
    """

    def direct_line(self, queue: str, lease_ms: int, worker_id: str) -> DirectLine | None:
        """A line for one child, or None when this broker's connection cannot offer one."""
        ...
