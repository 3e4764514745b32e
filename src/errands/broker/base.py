"""The Broker protocol: the operations producers and workers need, nothing Redis-specific.

Producer operations come in pairs (a blocking call and its ``a``-prefixed async twin); worker
operations are async only, since the worker's supervisor runs an event loop. Every operation on
a job is atomic in the broker: a job is always in exactly one of ready, delayed, active, dead or
finished. `errands.testing.MemoryBroker` and `errands.broker.redis.RedisBroker` implement it,
and one conformance suite (tests/integration/test_broker_conformance.py) holds them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from errands.broker.types import (
    AckCode,
    CancelCode,
    Enqueued,
    Fetched,
    HeartbeatReply,
    JobState,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    QueueInfo,
)

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
    """

    dead_max_count: int = 10_000
    dead_max_age_ms: int = 7 * 86_400_000
    promote_limit: int = 100
    reap_limit: int = 100
    maintenance_limit: int = 1_000
    worker_silence_ms: int = 120_000


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

    def enqueue_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued]]:
        """`enqueue` for each (queue, jobs) batch, in order; streamed where the broker can."""
        ...

    def job_state(self, queue: str, job_id: str) -> JobState:
        """Read a job's state, and its outcome once finished."""
        ...

    async def ajob_state(self, queue: str, job_id: str) -> JobState:
        """Async twin of `job_state`."""
        ...

    def wait_result(self, queue: str, job_id: str, timeout_s: float) -> JobState:
        """Block until the job finishes or `timeout_s` passes; return its state either way."""
        ...

    async def await_result(self, queue: str, job_id: str, timeout_s: float) -> JobState:
        """Async twin of `wait_result`."""
        ...

    def cancel(self, queue: str, job_id: str) -> CancelCode:
        """Cancel a queued or scheduled job, ask a running one to stop, or drop a dead one."""
        ...

    async def acancel(self, queue: str, job_id: str) -> CancelCode:
        """Async twin of `cancel`."""
        ...

    def redrive(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> list[str]:
        """Move dead jobs (the given ones, else the oldest `limit`) back to ready."""
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

    # Worker side: async only.
    async def fetch(self, queue: str, n: int, lease_ms: int, worker_id: str) -> Fetched:
        """Lease up to `n` ready jobs; also promotes due delayed jobs and reaps expired leases."""
        ...

    async def ack(self, queue: str, outcomes: Sequence[Outcome]) -> list[AckCode]:
        """Settle finished jobs; an outcome with a stale token is refused (`AckCode.STALE`)."""
        ...

    async def ack_and_fetch(
        self, queue: str, outcomes: Sequence[Outcome], n: int, lease_ms: int, worker_id: str
    ) -> tuple[list[AckCode], Fetched]:
        """`ack` then `fetch`, in one round trip where the broker can."""
        ...

    async def heartbeat(
        self, queue: str, worker_id: str, worker_info: bytes, leases: Sequence[Lease], lease_ms: int
    ) -> HeartbeatReply:
        """Renew every lease the worker holds in `queue`."""
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
