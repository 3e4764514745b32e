"""The Broker protocol: the operations producers and workers need, nothing Redis-specific.

Producer operations come in pairs (a blocking call and its ``a``-prefixed async twin); worker
operations are async only, since the worker's supervisor runs an event loop. Every operation on
a job is atomic in the broker: a job is always in exactly one of ready, delayed, active, dead or
finished. `errands.testing.MemoryBroker` and `errands.broker.redis.RedisBroker` implement it,
and one conformance suite (`errands.conformance`) holds them to it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

import msgspec

from errands.broker.types import (
    AckCode,
    CancelCode,
    Enqueued,
    Fetched,
    HeartbeatReply,
    JobSnapshot,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    QueueInfo,
)
from errands.errors import BrokerError

__all__ = ["Broker", "BrokerSettings"]


class BrokerSettings(msgspec.Struct, frozen=True):
    """Bounds the broker enforces, whatever the worker asks.

    Attributes:
        dead_max_count: the dead-letter set keeps at most this many jobs (oldest dropped first).
        dead_max_age_ms: dead jobs older than this are dropped by maintenance.
        promote_limit: due delayed jobs moved to ready per fetch.
        reap_limit: expired leases given back per fetch.
        maintenance_limit: items handled per step of one maintenance pass.
        worker_silence_ms: a worker not heard from for this long leaves the worker list.
        chord_send_ms: a chord whose members were not all sent within this (its sender
            stopped halfway) fails; one whose members were sent fails after `dead_max_age_ms`
            if they have not all reported by then.
    """

    dead_max_count: int = 10_000
    dead_max_age_ms: int = 7 * 86_400_000
    promote_limit: int = 100
    reap_limit: int = 100
    maintenance_limit: int = 1_000
    worker_silence_ms: int = 120_000
    chord_send_ms: int = 600_000


class Broker(Protocol):
    """What errands needs from a broker."""

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

    def job_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Read a job's state, and its outcome once finished."""
        ...

    async def ajob_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Async twin of `job_state`."""
        ...

    def wait_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Block until the job finishes or `timeout_s` passes; return its state either way."""
        ...

    async def await_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Async twin of `wait_result`."""
        ...

    def cancel(self, queue: str, job_id: str) -> CancelCode:
        """Cancel a queued or scheduled job, ask a running one to stop, or drop a dead one."""
        ...

    async def acancel(self, queue: str, job_id: str) -> CancelCode:
        """Async twin of `cancel`."""
        ...

    def redrive(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> list[str]:
        """Move dead jobs (the given ones, else the oldest `limit`) back to ready.

        The chords of the queue's dead members are failed first (`adeliver_chord_failures`):
        a redriven chord member runs on its own, and its chord stays failed.
        """
        ...

    def purge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Delete dead jobs (the given ones, else the oldest `limit`) for good."""
        ...

    def dead_jobs(self, queue: str, limit: int = 100) -> list[tuple[str, float, bytes | None]]:
        """The oldest dead jobs: (id, time of death in seconds, payload)."""
        ...

    def info(self, queue: str) -> QueueInfo:
        """Counts per state, counters and workers of one queue."""
        ...

    def set_paused(self, queue: str, paused: bool) -> None:
        """Pause (workers fetch nothing) or resume a queue."""
        ...

    def known_queues(self) -> list[str]:
        """Every queue producers or workers have used."""
        ...

    def close(self) -> None:
        """Close the blocking connections."""
        ...

    def chord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Record a chord in its callback's queue before its members are sent.

        `callback.payload` holds the JSON string `placeholder`, replaced by the list of the
        members' results when the last one reports. False when the chord was already recorded.
        """
        ...

    async def achord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Async twin of `chord_start`."""
        ...

    def chord_arm(self, queue: str, chord_id: str) -> bool:
        """Every member of the chord was sent: it may now wait for them (see `BrokerSettings`).

        False when the chord is unknown (it finished or failed already).
        """
        ...

    async def achord_arm(self, queue: str, chord_id: str) -> bool:
        """Async twin of `chord_arm`."""
        ...

    # Worker side: async only.
    async def fetch(self, queue: str, n: int, lease_ms: int, worker_id: str) -> Fetched:
        """Lease up to `n` ready jobs; also promotes due delayed jobs and reaps expired leases."""
        ...

    async def ack(self, queue: str, outcomes: Sequence[Outcome]) -> list[AckCode]:
        """Settle finished jobs; an outcome with a stale token is refused (`AckCode.STALE`)."""
        ...

    async def ack_and_fetch(
        self, queue: str, outcomes: Sequence[Outcome], n: int, lease_ms: int, worker_id: str
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
        """Renew every lease the worker holds in `queue`.

        `started`: the ids among them that are running or ran. Only a lease seen started can
        expire as a stall; one lost before is not held against its job (its worker died).
        """
        ...

    async def release(self, queue: str, leases: Sequence[Lease]) -> int:
        """Give jobs back to ready without spending an attempt."""
        ...

    async def maintain(self, queue: str, owner: str, lock_ms: int) -> MaintenanceReport | None:
        """Bounded housekeeping; None when another worker holds the maintenance lock."""
        ...

    async def chord_part(self, queue: str, chord_id: str, index: int, result: bytes) -> int:
        """Count member `index` (its result JSON); the last one enqueues the callback.

        Returns 0 unknown chord, 1 already counted, 2 counted, 3 counted and callback enqueued.
        """
        ...

    async def chord_abort(self, queue: str, chord_id: str, outcome: bytes) -> bool:
        """Fail a chord whose member failed for good: its callback gets `outcome` as result."""
        ...

    async def adeliver_chord_failures(self, queue: str) -> int:
        """Fail the chords of the members of `queue` that ended dead; returns how many notes.

        A member that ends dead (any reason) leaves a note in its queue in the same step; this
        turns each note into `chord_abort` in the chord's queue, then drops it. Safe to run
        twice or from several workers: aborting a chord twice changes nothing.
        """
        ...

    async def wait_and_fetch(
        self, queue: str, timeout_s: float, n: int, lease_ms: int, worker_id: str
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
        """Close the async connections."""
        ...
