"""The stores beside the transport: `ResultStore` (outcomes) and `WorkflowStore` (chords)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from errands.broker.types import JobSnapshot, NewJob
from errands.progress import Progress

__all__ = ["ResultStore", "WorkflowStore"]


class ResultStore(Protocol):
    """Where a job's state and outcome are read, and waited for."""

    def job_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Read a job's state, and its outcome once finished."""
        ...

    async def ajob_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Async twin of `job_state`."""
        ...

    async def ajob_states(self, jobs: Sequence[tuple[str, str]]) -> list[JobSnapshot]:
        """`ajob_state` of many (queue, job id) pairs, in order, in one round trip where it can."""
        ...

    def job_progress(self, queue: str, job_id: str) -> Progress | None:
        """What the job last reported of its progress (`Transport.report_progress`).

        None when it reported nothing, or its progress went with it (it succeeded, was
        cancelled or purged).
        """
        ...

    async def ajob_progress(self, queue: str, job_id: str) -> Progress | None:
        """Async twin of `job_progress`."""
        ...

    def wait_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Block until the job finishes or `timeout_s` passes; return its state either way."""
        ...

    async def await_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Async twin of `wait_result`."""
        ...


class WorkflowStore(Protocol):
    """Chords: a callback that runs once every member of a group has succeeded."""

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
