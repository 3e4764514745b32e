"""`JobState`: the states a job can be in, as `AsyncResult.state` and the broker report them."""

from __future__ import annotations

import enum

__all__ = ["JobState"]


class JobState(enum.StrEnum):
    """Where a job is; a `str`, so ``result.state == "succeeded"`` holds as well.

    A job moves ``queued`` (or ``scheduled``) → ``active`` → one of ``succeeded``, ``failed``,
    ``cancelled`` or ``dead``, or back to ``queued``/``scheduled`` for another attempt
    (docs/design.md, "The job state machine").
    """

    #: In its queue, ready to be fetched.
    QUEUED = "queued"
    #: Waiting for its time: a countdown, an eta or a retry's backoff.
    SCHEDULED = "scheduled"
    #: Leased to a worker, which is running it.
    ACTIVE = "active"
    #: Finished with a result.
    SUCCEEDED = "succeeded"
    #: Finished with an error, for good (its outcome says which).
    FAILED = "failed"
    #: Asked to stop, and stopped without succeeding.
    CANCELLED = "cancelled"
    #: In the dead set: failed for good and kept for an operator (its error record expired).
    DEAD = "dead"
    #: A chord's callback whose members have not all reported yet.
    WAITING = "waiting"
    #: Its record cannot be read: the next fetch or maintenance buries it in the dead set.
    CORRUPT = "corrupt"
    #: Never existed, or finished and its result expired or was not kept.
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str) -> JobState:
        """The state named `value`; ``UNKNOWN`` for a name this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN
