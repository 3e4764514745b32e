"""The context of a running job (what `bind=True` passes first) and `current_task()`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from errands.errors import Retry
from errands.progress import ProgressSink, encode_progress

__all__ = ["TaskContext", "current_task"]

_current: ContextVar[TaskContext | None] = ContextVar("errands_current_task", default=None)


def current_task() -> TaskContext | None:
    """The context of the job running in this thread or asyncio task, or None outside one."""
    return _current.get()


class _JobLogAdapter(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records carry the job's id, task name, queue and attempt."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def _never_cancelled() -> bool:
    return False


@dataclass(slots=True)
class TaskContext:
    """What a bound task (``bind=True``) receives first, and what `current_task()` returns.

    Attributes:
        id: the job id.
        task: the task name.
        attempt: 1 on the first run, 2 on the first retry, ...
        max_retries: retries allowed after the first run.
        queue: the queue the job came from.
        priority: 0-9, higher runs first.
        deadline: the wall-clock time (seconds since the epoch) of the soft time limit.
        headers: what middleware sent along with the job (`errands.middleware.Outgoing`).
        extras: the task's options for middleware (``@app.task(extras={...})``).
        scheduled_for: for a schedule's fire, its nominal time (an aware UTC datetime), whatever
            the jitter or delay; None for a job sent otherwise.
        log: a logger whose records carry ``errands_job_id``, ``errands_task``,
            ``errands_queue`` and ``errands_attempt`` (shown by both log formats).
    """

    id: str
    task: str
    attempt: int
    max_retries: int
    queue: str
    priority: int = 0
    deadline: float | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)
    scheduled_for: datetime | None = None
    _cancelled: Callable[[], bool] = field(default=_never_cancelled, repr=False)
    _log: logging.LoggerAdapter[logging.Logger] | None = field(default=None, repr=False)
    _progress: ProgressSink | None = field(default=None, repr=False)

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry the job's id, task name, queue and attempt."""
        # Built on first use: most jobs never log, and this is the hot path of a worker.
        if self._log is None:
            self._log = _JobLogAdapter(
                logging.getLogger(f"errands.task.{self.task}"),
                {
                    "errands_job_id": self.id,
                    "errands_task": self.task,
                    "errands_queue": self.queue,
                    "errands_attempt": self.attempt,
                },
            )
        return self._log

    @property
    def retries_left(self) -> int:
        """How many more attempts this job may have after this one."""
        return max(self.max_retries + 1 - self.attempt, 0)

    def retry(self, countdown: float | None = None, exc: BaseException | None = None) -> NoReturn:
        """Stop this attempt and run the job again later, within max_retries.

        Args:
            countdown: seconds before the next attempt; the task's backoff when None.
            exc: the error to record if no attempt is left.
        """
        raise Retry(countdown=countdown, exc=exc)

    def is_cancelled(self) -> bool:
        """True once someone asked this job to stop (`AsyncResult.cancel()`): wind down."""
        return self._cancelled()

    def set_progress(self, fraction: float | None = None, message: str = "", **data: Any) -> None:
        """Report how far this job got: ``ctx.set_progress(0.4, "step 2 of 5", rows=1200)``.

        Read back with `AsyncResult.progress` (or ``aprogress()``) and shown by ``errands
        status``. Call it as often as you like: the worker writes at most one report per job
        every `errands.progress.INTERVAL_S` seconds (0.5), the latest winning, and the last one
        of a burst still goes once that time is up, unless the job has finished by then. The
        job's progress stays while it lives (across retries, and while it is dead) and goes when
        it succeeds. Best effort: a report lost on its way (Redis down or full) is dropped, and
        never fails or slows the job. Outside a worker (``errands.testing.run_jobs``, a context
        made by hand) it is checked and dropped.

        Args:
            fraction: how much is done, from 0 to 1 (0.4 is 40 %), or None when the task cannot
                tell.
            message: what it is doing; cut to `errands.progress.MAX_MESSAGE` (500) characters.
            **data: JSON values to show with it (counts, the name of a step).

        Raises:
            ArgumentError: a fraction that is not a number from 0 to 1, a message that is not a
                str, data that are not JSON values (naming the bad one), or a report over
                `errands.progress.MAX_BYTES` (4 KiB) encoded.
        """
        record = encode_progress(fraction, message, data, time.time())
        if self._progress is not None:
            self._progress.offer(self.id, record)

    def activate(self) -> Any:
        """Make this the current task; returns the token for `deactivate`."""
        return _current.set(self)

    @staticmethod
    def deactivate(token: Any) -> None:
        """Undo `activate`."""
        _current.reset(token)
