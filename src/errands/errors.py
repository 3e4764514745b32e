"""One exception hierarchy, rooted at `ErrandsError`; every message says what to do next."""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "ArgumentError",
    "BrokerError",
    "BrokerFull",
    "BrokerTooOld",
    "BrokerUnavailable",
    "ChordFailed",
    "ConfigurationError",
    "CorruptJob",
    "ErrandsError",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobStalled",
    "RateLimited",
    "ResultTimeoutError",
    "Retry",
    "SoftTimeLimitExceeded",
    "TaskCalledDirectly",
    "TaskNotFound",
    "TimeLimitExceeded",
    "WaitInsideTaskError",
    "WorkerLost",
]


class ErrandsError(Exception):
    """The root of every error errands raises on purpose."""


class ConfigurationError(ErrandsError, ValueError):
    """An option has a value errands refuses (a negative limit, an unknown queue name...)."""


class ArgumentError(ErrandsError, TypeError):
    """A task argument or result is not a JSON value, or the payload is too large.

    The message names the path of the bad value, e.g. ``args[1]["when"] is a datetime``.
    """


class BrokerError(ErrandsError):
    """Redis answered in a way errands cannot work with; waiting will not help.

    The server is not Redis, refused our credentials, has no Functions, or refused a call for a
    reason that is not passing (the message names it). A worker that meets one gives its jobs
    back and exits non-zero; fix what the message says, then start it again.

    Attributes:
        enqueued: for a refused bulk enqueue, what was enqueued before (and beside) the call
            Redis refused: each call is all or nothing, so these jobs are whole (handles from
            `App.enqueue_many`, answers from the broker's `enqueue`); empty otherwise.
    """

    enqueued: list[Any] = []  # noqa: RUF012 - replaced per instance, never mutated in place


class BrokerUnavailable(BrokerError, ConnectionError):
    """Redis cannot serve us now, for a reason that passes: retrying later is the remedy.

    It cannot be reached, timed out, is loading its data, is a replica during a failover
    (READONLY), is busy running a script, or lacks the replicas it needs to accept writes. A
    worker waits and retries; a producer gets this error and decides.
    """


class BrokerFull(BrokerUnavailable):
    """Redis refused a write because it reached its ``maxmemory`` (an OOM reply).

    Nothing of the refused call was written. Workers keep draining the queues (acks free memory
    and are accepted again once Redis is under the limit); raise ``maxmemory``, or find the queue
    that grows (`errands queues`).
    """


class BrokerTooOld(BrokerError):
    """The Redis server is older than 7.0 and has no Functions."""


class TaskCalledDirectly(ErrandsError, TypeError):
    """A task was called like a function: ``.delay()`` enqueues it, ``.fn()`` runs it here."""


class TaskNotFound(ErrandsError, LookupError):
    """No task of that name is registered on the app."""


class JobNotFound(ErrandsError, LookupError):
    """The job id is unknown: it never existed, or its result expired."""


class ResultTimeoutError(ErrandsError, builtins.TimeoutError):
    """A wait for a job's result ran out of time; the job may still finish later."""


class WaitInsideTaskError(ErrandsError, RuntimeError):
    """`get()` was called inside a running task: it would block a worker slot."""

    def __init__(self) -> None:
        super().__init__(
            "AsyncResult.get() inside a task would block a worker slot and can deadlock the pool: "
            "use errands.chain(...) to run a task after another, errands.group(...) to run tasks "
            "in parallel, or errands.chord(...) to run a callback when a group has finished"
        )


class JobFailed(ErrandsError):
    """The job ended in failure; `get()` raises this with the task's error and traceback."""

    def __init__(self, job_id: str, error_type: str, message: str, traceback: str | None) -> None:
        self.job_id = job_id
        self.error_type = error_type
        self.error_message = message
        self.remote_traceback = traceback
        super().__init__(f"job {job_id} failed: {error_type}: {message}")


class JobCancelled(ErrandsError):
    """The job was cancelled before it finished."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} was cancelled")


class Retry(ErrandsError):
    """Raise inside a task to run it again later, within its max_retries.

    Args:
        countdown: seconds to wait before the next attempt; the task's backoff when None.
        exc: the error that caused the retry, kept as the job's error if no attempt is left.
    """

    def __init__(self, countdown: float | None = None, exc: BaseException | None = None) -> None:
        self.countdown = countdown
        self.exc = exc
        super().__init__(f"retry requested{f' in {countdown}s' if countdown is not None else ''}")


class RateLimited(ErrandsError):
    """Raise inside a task when the service it calls says "too many requests".

    The job runs again after `retry_after` seconds without spending an attempt, and the rate
    limiters of its task back off for as long, so its peers wait too instead of meeting the
    same refusal. A job refused this way more than `MAX_RATE_LIMITED` times spends attempts
    from then on, so none waits forever.

    Args:
        retry_after: seconds to wait (a service's Retry-After header, say); at least 0.
    """

    def __init__(self, retry_after: float = 1.0) -> None:
        if not 0 <= retry_after < 86_400:
            raise ArgumentError(
                f"retry_after must be a number of seconds from 0 to a day, not {retry_after!r}"
            )
        self.retry_after = float(retry_after)
        super().__init__(f"rate limited: run again in {retry_after:g}s")


#: Runs refused by `RateLimited` that a job may have without spending attempts.
MAX_RATE_LIMITED = 100


class SoftTimeLimitExceeded(ErrandsError):
    """Raised inside a task at its soft time limit, so it can clean up before the hard one."""


class TimeLimitExceeded(ErrandsError):
    """The task ran past its hard time limit and its process was killed."""


class ScheduleNotFound(ErrandsError, LookupError):
    """No schedule has that id (`errands schedules list` shows the ones there are)."""


class WorkerLost(ErrandsError):
    """The process running the task died (a crash, os._exit, an OOM kill)."""


class CorruptJob(ErrandsError):
    """The job's record in Redis was missing or unreadable; it went to the dead set.

    A key deleted or overwritten by something else, or writes lost in a failover: the dead
    job's outcome says which part was wrong. Purge it, or redrive it once its record is back.
    """


class ChordFailed(ErrandsError):
    """A member of the chord ended dead, so its callback will never run; the message says which."""


class JobStalled(ErrandsError):
    """The job's lease expired more than max_stalls times: it may be killing workers."""
