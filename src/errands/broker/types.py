"""The records that cross the Broker protocol; plain data, the same for every broker."""

from __future__ import annotations

import enum
from typing import Literal

import msgspec

from errands.states import JobState

__all__ = [
    "AckCode",
    "CancelCode",
    "ChordFailure",
    "Delivery",
    "Enqueued",
    "Fetched",
    "HeartbeatReply",
    "JobSnapshot",
    "Lease",
    "MaintenanceReport",
    "NewJob",
    "Outcome",
    "ProgressReport",
    "read_outcome",
]

IdempotencyMode = Literal["window", "until_finished"]
#: What the process that ran a job asks the broker to do with it, one name per outcome, the same
#: names as the outcome records' states and the middleware's `Execution.state`: "succeeded"
#: (store the result, delete the job), "retrying" (run it again after its delay while it has
#: attempts left, else it is dead), "failed" (for good: the dead set), "deferred" (its task is
#: unknown here, as in a rolling deploy: run it again later, no attempt charged). What the
#: broker did is its `AckCode`: it may differ (a retry with no attempt left is DEAD, a job asked
#: to stop is CANCELLED, a lost lease is STALE).
#: "limited": the task met its service's own limit (`RateLimited`): run it again after its delay,
#: no attempt charged, and the rate limiters it names back off as long.
OutcomeKind = Literal["succeeded", "retrying", "failed", "deferred", "limited"]


class NewJob(msgspec.Struct, frozen=True):
    """A job to enqueue: its encoded payload and the settings the broker enforces."""

    id: str
    payload: bytes
    priority: int = 0
    delay_ms: int = 0
    idempotency_key: str | None = None
    idempotency_ttl_ms: int = 86_400_000
    idempotency_mode: IdempotencyMode = "window"
    max_attempts: int = 4
    result_ttl_ms: int = 86_400_000
    ignore_result: bool = False
    max_stalls: int = 1
    chord: str = ""  # a chord member: the chord's id (its callback's job id)
    chord_queue: str = ""  # ... the queue the chord lives in (its callback's)
    chord_index: int = 0  # ... and its place in the chord
    limits: tuple[str, ...] = ()  # the limiter records it counts against (errands.limits)


class Enqueued(msgspec.Struct, frozen=True):
    """The answer to one enqueued job: its id, and False when it was a duplicate."""

    id: str
    created: bool


class Delivery(msgspec.Struct, frozen=True):
    """A job handed to a worker under a lease; `token` must come back with the ack."""

    id: str
    payload: bytes
    attempt: int
    token: str


class Fetched(msgspec.Struct, frozen=True):
    """What a fetch returned, when the next delayed job is due, and when the next lease expires.

    Both are in ms from now (None: there is none); an idle worker sleeps until the sooner, so a
    due job or an expired lease is handled without polling. `more` is true when jobs were handed
    out and ready ones are left behind them; `died`, the (id, outcome) of the jobs the fetch sent
    to the dead set (stalled, or buried).
    """

    jobs: list[Delivery]
    next_due_ms: int | None
    paused: bool = False
    next_expiry_ms: int | None = None
    more: bool = False
    died: list[tuple[str, bytes]] = []


class Outcome(msgspec.Struct, frozen=True):
    """How a job ended, for the ack: `outcome` is the JSON result record."""

    id: str
    token: str
    kind: OutcomeKind
    outcome: bytes
    retry_delay_ms: int = 0


class AckCode(enum.IntEnum):
    """What the broker did with one outcome."""

    STALE = 0
    SUCCEEDED = 1
    RETRYING = 2
    DEAD = 3
    CANCELLED = 4


class CancelCode(enum.IntEnum):
    """What a cancel did."""

    NOT_FOUND = 0
    CANCELLED = 1
    REQUESTED = 2
    REMOVED_FROM_DEAD = 3


class Lease(msgspec.Struct, frozen=True):
    """A job a worker holds, named by its id and lease token."""

    id: str
    token: str


class ProgressReport(msgspec.Struct, frozen=True):
    """A running job's latest progress record (JSON, `errands.progress`), under its lease."""

    id: str
    token: str
    record: bytes


class HeartbeatReply(msgspec.Struct, frozen=True):
    """Leases the worker lost (stop those jobs, do not ack) and jobs asked to stop."""

    lost: list[str]
    cancelled: list[str]


class _OutcomeHead(msgspec.Struct):
    state: str
    attempts: int = 0


_head_decoder = msgspec.json.Decoder(_OutcomeHead)


def read_outcome(outcome: bytes) -> tuple[JobState, int]:
    """The state and attempts written in an outcome record (JSON), not the rest of it."""
    head = _head_decoder.decode(outcome)
    return JobState.parse(head.state), head.attempts


class JobSnapshot(msgspec.Struct, frozen=True):
    """A job's state and attempts as the broker saw them; `outcome` once it finished."""

    state: JobState
    outcome: bytes | None
    attempts: int

    @property
    def finished(self) -> bool:
        """True when the job will not run again (unless redriven from the dead set)."""
        return self.outcome is not None

    @property
    def settled(self) -> bool:
        """True when waiting longer cannot change the answer.

        Finished, or dead with its error record expired, or unknown (never existed, or its
        result expired or was not kept).
        """
        return self.outcome is not None or self.state in (JobState.DEAD, JobState.UNKNOWN)


class MaintenanceReport(msgspec.Struct, frozen=True):
    """What one maintenance pass did; `saturated`: a step had more to do than its limit let it.

    `died`: the (id, outcome) of the jobs it sent to the dead set (stalled, or buried).
    """

    promoted: int
    reaped: int
    results_expired: int
    idempotency_expired: int
    dead_trimmed: int
    workers_dropped: int
    chords_failed: int = 0
    saturated: bool = False
    died: list[tuple[str, bytes]] = []


class ChordFailure(msgspec.Struct, frozen=True):
    """A chord member that ended dead: its chord must fail (see `Broker.chord_failures`)."""

    member: str  # the member's job id
    chord: str  # the chord's id
    queue: str  # the queue the chord lives in
    index: int
    outcome: bytes  # the member's outcome record (JSON)
