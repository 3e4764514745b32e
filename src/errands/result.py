"""`AsyncResult`: a handle on a job: its state, its result, cancel; and the outcome record.

`get()` inside a running task raises `WaitInsideTaskError`: waiting there blocks a worker slot
and can deadlock a pool; chains, groups and chords replace it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from errands.broker.types import CancelCode, JobSnapshot
from errands.context import current_task
from errands.errors import (
    ConfigurationError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    ResultTimeoutError,
    WaitInsideTaskError,
)
from errands.progress import Progress
from errands.states import JobState

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["AsyncResult", "ErrorInfo", "OutcomeRecord", "error_of", "seconds"]

R = TypeVar("R")


class ErrorInfo(msgspec.Struct, omit_defaults=True):
    """An error as stored with a failed job."""

    type: str
    message: str
    traceback: str | None = None


class OutcomeRecord(msgspec.Struct, omit_defaults=True):
    """How a job ended, as stored in Redis and published to waiters."""

    state: str
    result: Any = None
    error: ErrorInfo | None = None
    attempts: int = 0
    finished_at: float | None = None


_outcome_decoder = msgspec.json.Decoder(OutcomeRecord)


def error_of(outcome: bytes) -> ErrorInfo | None:
    """The error an outcome record holds (None: none, or a record that does not decode)."""
    try:
        return _outcome_decoder.decode(outcome).error
    except msgspec.DecodeError:
        return None


def seconds(value: float | timedelta) -> float:
    """A duration given as seconds or a timedelta, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class AsyncResult(Generic[R]):
    """A handle on one job.

    Args:
        app: the app whose broker holds the job.
        id: the job id.
        queue: the queue the job was sent to.
    """

    __slots__ = ("app", "id", "ignore_result", "queue")

    def __init__(
        self,
        app: App,
        id: str,  # noqa: A002 - the natural name
        queue: str,
        *,
        ignore_result: bool = False,
    ) -> None:
        self.app = app
        self.id = id
        self.queue = queue
        self.ignore_result = ignore_result

    def _check_waitable(self) -> None:
        if current_task() is not None:
            raise WaitInsideTaskError
        if self.ignore_result:
            raise ConfigurationError(
                f"job {self.id} belongs to a task with ignore_result=True: its result is not "
                "kept, so there is nothing to wait for; drop ignore_result to get() it"
            )

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id} queue={self.queue!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and (other.id, other.queue) == (self.id, self.queue)

    def __hash__(self) -> int:
        return hash((self.id, self.queue))

    @property
    def state(self) -> JobState:
        """Where the job is now (a `JobState`, which is a `str`).

        queued, scheduled, active, succeeded, failed, cancelled, dead, waiting, corrupt or
        unknown: ``waiting`` is a chord's callback whose members have not all succeeded;
        ``corrupt`` a job whose record cannot be read (it is about to be buried); ``unknown`` a
        job that never existed, or whose result expired or was not kept.
        """
        return self.app.broker.job_state(self.queue, self.id).state

    async def astate(self) -> JobState:
        """Async twin of `state`."""
        return (await self.app.broker.ajob_state(self.queue, self.id)).state

    @property
    def progress(self) -> Progress | None:
        """What the running job last reported with ``ctx.set_progress``, or None.

        A `Progress` (fraction, message, data, updated_at), read from the broker each time. It
        is kept while the job lives (across retries, and in the dead set: where it got before it
        died) and goes when the job succeeds or is cancelled: None then, and for a job that never
        reported. Reports reach the broker at most every `errands.progress.INTERVAL_S` seconds.
        """
        return self.app.broker.job_progress(self.queue, self.id)

    async def aprogress(self) -> Progress | None:
        """Async twin of `progress`."""
        return await self.app.broker.ajob_progress(self.queue, self.id)

    def ready(self) -> bool:
        """True once the job has finished (succeeded, failed or cancelled)."""
        return self.app.broker.job_state(self.queue, self.id).finished

    def get(self, timeout: float | timedelta = 30.0) -> R:
        """Wait for the job's result, at most `timeout` (seconds or a timedelta).

        Raises:
            WaitInsideTaskError: called inside a running task; use chain, group or chord.
            ResultTimeoutError: the job did not finish in time (it may still finish later).
            JobFailed: the job failed for good; the error carries the task's error and traceback.
            JobCancelled: the job was cancelled.
            JobNotFound: no such job, or its result expired or was not kept (ignore_result).
        """
        self._check_waitable()
        state = self.app.broker.wait_result(self.queue, self.id, seconds(timeout))
        return self._value(state, timeout)

    async def aget(self, timeout: float | timedelta = 30.0) -> R:  # noqa: ASYNC109 - twin of get
        """Async twin of `get`."""
        self._check_waitable()
        state = await self.app.broker.await_result(self.queue, self.id, seconds(timeout))
        return self._value(state, timeout)

    def _value(self, state: JobSnapshot, timeout: float | timedelta) -> R:
        if state.outcome is None:
            if state.state == JobState.DEAD:
                raise JobFailed(
                    self.id,
                    "errands.errors.JobFailed",
                    "the job is in the dead set, and its error record has expired (result_ttl): "
                    "see `errands dead list`",
                    None,
                )
            if state.state == JobState.UNKNOWN:
                raise JobNotFound(
                    f"no job {self.id} in queue {self.queue!r}: it never existed, or it finished "
                    "and its result expired or was not kept (ignore_result=True)"
                )
            raise ResultTimeoutError(
                f"job {self.id} is still {state.state} after {seconds(timeout):g}s: wait longer, "
                "or check `errands status` for why it has not run"
            )
        outcome = _outcome_decoder.decode(state.outcome)
        if outcome.state == "succeeded":
            value: R = outcome.result
            return value
        if outcome.state == "cancelled":
            raise JobCancelled(self.id)
        error = outcome.error or ErrorInfo("unknown", "no error was recorded")
        raise JobFailed(self.id, error.type, error.message, error.traceback)

    def outcome(self) -> OutcomeRecord | None:
        """The stored outcome once the job finished, else None."""
        state = self.app.broker.job_state(self.queue, self.id)
        return None if state.outcome is None else _outcome_decoder.decode(state.outcome)

    def cancel(self) -> CancelCode:
        """Cancel the job: a queued one never runs; a running one is asked to stop.

        A running task sees the request through ``ctx.is_cancelled()``; one that fails after
        the request is not retried.
        """
        return self.app.broker.cancel(self.queue, self.id)

    async def acancel(self) -> CancelCode:
        """Async twin of `cancel`."""
        return await self.app.broker.acancel(self.queue, self.id)

    def to_dict(self) -> dict[str, Any]:
        """The id and queue, enough to rebuild the handle with `App.result(id, queue)`."""
        return {"id": self.id, "queue": self.queue}
