"""The operator's read model: what an `Inspector` returns, the same for every broker.

Every list comes as a `Page`: its items and a cursor for the next one. A page costs the same
whatever the size of what it pages through (a dead set of 10 jobs or of 1,000,000).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from errands.progress import Progress
from errands.result import ErrorInfo
from errands.states import JobState

__all__ = [
    "DEAD_SCAN",
    "HISTORY",
    "HISTORY_TRACEBACK",
    "MAX_PAGE",
    "Attempt",
    "DeadFilter",
    "DeadJob",
    "JobDetail",
    "LimitKeyState",
    "LimiterState",
    "Page",
    "QueueSummary",
    "WorkerSummary",
]

T = TypeVar("T")

#: The most items one page may hold: a bound on the work (and the reply) of one read.
MAX_PAGE = 1000
#: Entries of the dead set a filtered page looks at, matching or not: it holds fewer than its
#: limit (and a cursor) when few match. A bound on the time one read holds Redis (about 1 ms).
DEAD_SCAN = 250
#: Failed attempts of a job kept for `JobDetail.history`: a bound on a retried job's memory.
HISTORY = 5
#: Characters of each kept attempt's traceback (its end, where the error is).
HISTORY_TRACEBACK = 4000


class Page(msgspec.Struct, Generic[T], frozen=True):
    """One page of a list.

    Attributes:
        items: this page's items, in the list's order.
        cursor: give it back (``cursor=``) for the next page; None when this is the last.
    """

    items: list[T]
    cursor: str | None = None


class QueueSummary(msgspec.Struct, frozen=True):
    """A queue at a glance.

    Attributes:
        name: the queue.
        ready: jobs waiting to be fetched.
        delayed: jobs waiting for their time (countdown, eta, retry backoff).
        active: jobs leased to a worker.
        dead: jobs in the dead set.
        paused: workers fetch nothing from it.
        oldest_ready_age_s: seconds since the oldest ready job was enqueued (None: none ready).
        consumers: workers heard from lately that serve the queue.
        stats: counters since the queue was first used (enqueued, succeeded, retried, ...).
    """

    name: str
    ready: int
    delayed: int
    active: int
    dead: int
    paused: bool
    oldest_ready_age_s: float | None
    consumers: int
    stats: dict[str, int]


class Attempt(msgspec.Struct, frozen=True):
    """An attempt of a job that failed and was retried.

    Attributes:
        attempt: its number (1 for the first run).
        ended_at: when it ended (Unix seconds, the broker's clock).
        worker: the worker that ran it.
        error: what it failed with, traceback included.
    """

    attempt: int
    ended_at: float
    worker: str | None
    error: ErrorInfo | None


class JobDetail(msgspec.Struct, frozen=True):
    """One job's whole record, as far as the broker still holds it.

    A job that finished keeps only its outcome (until its result expires): its arguments and
    history go with it. A dead job keeps everything until it is purged, trimmed or redriven.

    Attributes:
        id: the job id.
        queue: its queue.
        state: where it is now.
        task: the task name (None when its record is gone: a finished job).
        args: its positional arguments (None when its record is gone).
        kwargs: its keyword arguments (None when its record is gone).
        headers: what middleware sent along with it.
        priority: 0-9, higher first.
        attempts: attempts charged so far.
        max_attempts: attempts it may have (None when its record is gone).
        stalls: leases it lost while running.
        worker: the worker that holds its lease (active jobs).
        enqueued_at: when it was sent (Unix seconds, the sender's clock).
        started_at: when its latest attempt was handed to a worker (Unix seconds, the broker's
            clock); None before its first, and once it finished (its record is gone).
        due_at: when a scheduled job may run (Unix seconds).
        lease_expires_at: when an active job's lease runs out unless renewed (Unix seconds).
        died_at: when it went to the dead set (Unix seconds).
        finished_at: when it finished (Unix seconds).
        result: what it returned (succeeded jobs whose result is kept).
        error: what it failed with for good, traceback included.
        history: the earlier attempts that failed and were retried, oldest first (the last
            `HISTORY` of them, each traceback cut to its last `HISTORY_TRACEBACK` characters).
        idempotency_key: its idempotency key, if any.
        chord: the chord it is a member of, if any.
        progress: what its task last reported of its progress (``ctx.set_progress``), kept
            while the job lives, dead included; None when it reported none.
    """

    id: str
    queue: str
    state: JobState
    task: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    headers: dict[str, Any] = {}
    priority: int = 0
    attempts: int = 0
    max_attempts: int | None = None
    stalls: int = 0
    worker: str | None = None
    enqueued_at: float | None = None
    started_at: float | None = None
    due_at: float | None = None
    lease_expires_at: float | None = None
    died_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: ErrorInfo | None = None
    history: list[Attempt] = []
    idempotency_key: str | None = None
    chord: str | None = None
    progress: Progress | None = None


class WorkerSummary(msgspec.Struct, frozen=True):
    """A live worker, as it last reported itself.

    A worker is live while it beats within its lease: one that stops cleanly leaves the list
    at once, one that dies once its lease has passed without a beat.

    Attributes:
        id: the worker id (``host:pid:hex``).
        host: its host name.
        pid: its process id.
        queues: every queue it serves.
        pool: its pool (process, solo, async).
        concurrency: how many jobs it runs at once.
        processed: jobs it finished since it started.
        holding: the ids of the jobs it holds (running or prefetched) in the queue read, or in
            every queue for the whole fleet (`Inspector.fleet`).
        seen_at: when it was last heard from (Unix seconds, the broker's clock).
        held: how many jobs it holds in all its queues, as it last counted them.
        started_at: when it started (Unix seconds, its own clock; None when it did not say).
        lease_s: its lease: it leaves the list when not heard from for this long (None: it did
            not say, and the broker's worker silence applies).
    """

    id: str
    host: str
    pid: int
    queues: list[str]
    pool: str
    concurrency: int
    processed: int
    holding: list[str]
    seen_at: float
    held: int = 0
    started_at: float | None = None
    lease_s: float | None = None


class DeadFilter(msgspec.Struct, frozen=True):
    """Which dead jobs to list; every field left None matches all.

    Attributes:
        task: only jobs of this task.
        error_type: only jobs that failed with this error type: its name as recorded
            (``KeyError``, ``myapp.errors.Declined``) or the last part of it (``Declined``).
        since: only jobs that died at or after this time (Unix seconds).
        until: only jobs that died before this time (Unix seconds).
    """

    task: str | None = None
    error_type: str | None = None
    since: float | None = None
    until: float | None = None


class DeadJob(msgspec.Struct, frozen=True):
    """A job in the dead set, as a list shows it (`Inspector.job` has the rest).

    Attributes:
        id: the job id.
        queue: its queue.
        task: its task ("?" when its record cannot be read).
        died_at: when it went to the dead set (Unix seconds, the broker's clock).
        attempts: attempts it had.
        error: what it failed with, without the traceback.
    """

    id: str
    queue: str
    task: str
    died_at: float
    attempts: int
    error: ErrorInfo | None


class LimitKeyState(msgspec.Struct, frozen=True):
    """One key of a limiter (the one record of a limiter without keys), as Redis holds it.

    Attributes:
        key: the key its key function gave ("" for a limiter without keys).
        tokens: starts its rate allows at once now (None: it has no rate).
        next_start_in_s: seconds until its rate allows a start (0: now; None: no rate).
        booked: jobs waiting in delayed for a rate slot booked for them.
        running: jobs running on its concurrency slots.
        parked: jobs waiting for a concurrency slot.
        backoff_s: seconds its back-off (a task raised RateLimited) lasts still (0: none).
    """

    key: str
    tokens: int | None
    next_start_in_s: float | None
    booked: int
    running: int
    parked: int
    backoff_s: float


class LimiterState(msgspec.Struct, frozen=True):
    """A limiter of one queue: what it allows and, per key, where it stands (`errands limits`).

    Attributes:
        name: the limiter's name.
        queue: the queue whose jobs it counts.
        allows: what it allows, in words (``20/s (burst 5), at most 3 at once, per key``).
        rate: its rate (``20/s``), None without one.
        burst: starts allowed at once after a quiet spell.
        concurrency: its cap on jobs running at once, None without one.
        keys: its keys with state (a page of them for a limiter with keys; a key with no
            record is idle, at full tokens).
        cursor: give it back for the next page of keys; None when this is the last.
    """

    name: str
    queue: str
    allows: str
    rate: str | None
    burst: int
    concurrency: int | None
    keys: list[LimitKeyState]
    cursor: str | None = None
