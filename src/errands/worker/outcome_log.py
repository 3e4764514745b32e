"""One log line per job outcome, written by the process that ran the job.

A child formats the line of each job it ran and writes it to its stderr (the supervisor's,
inherited), so logging a job costs no message to the supervisor. Levels: a success is INFO, a
retry (and a `RateLimited` run, and a job of a task this worker does not know, deferred) is
WARNING, a job that failed for good is ERROR, with its traceback. The logger is
`errands.observe.logging.JOBS_LOGGER` (``errands.jobs``); ``--log-jobs`` sets its level
(`level_for`): "failures" keeps WARNING and up, "none" drops every line.

The jobs the supervisor settles itself get their line from it: a job killed at its hard time
limit or lost with its child (`OutcomeLog.ran`, from the pool), and a job Redis sent to the
dead set after its lease expired too often, whose task is read back from Redis (`ReapedLog`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from errands.message import decode_record
from errands.observe.logging import JOBS_LOGGER, name_worker
from errands.result import ErrorInfo, OutcomeRecord, error_of
from errands.worker.pool import Assigned
from errands.worker.protocol import Finished

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["OutcomeLog", "ReapedLog", "level_for", "log_as_worker"]

_decoder = msgspec.json.Decoder(OutcomeRecord)
_INFO, _WARNING, _ERROR = logging.INFO, logging.WARNING, logging.ERROR
# Errors Redis records itself when it settles a job no process ran to an end (02_due.lua,
# 00_shared.lua): such a job gets its line from the worker whose call settled it.
_SETTLED_IN_REDIS = ("errands.errors.JobStalled", "errands.errors.CorruptJob")
_READ_TIMEOUT_S = 5.0


def level_for(log_jobs: str) -> int:
    """The level of the job logger for ``--log-jobs`` all, failures or none."""
    return {"all": logging.NOTSET, "failures": _WARNING}.get(log_jobs, logging.CRITICAL + 1)


def log_as_worker(worker_id: str, log_jobs: str) -> None:
    """This process logs for worker `worker_id`, its job lines as ``--log-jobs`` says.

    Children started from now on log the same way (`errands.observe.logging.child_arguments`).
    """
    name_worker(worker_id)
    logging.getLogger(JOBS_LOGGER).setLevel(level_for(log_jobs))


def _error(outcome: bytes) -> ErrorInfo | None:
    if not outcome:
        return None
    try:
        return _decoder.decode(outcome).error
    except msgspec.DecodeError:
        return None


class OutcomeLog:
    """Writes the line of each job outcome.

    Args:
        logger: where the lines go (`JOBS_LOGGER` when None).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(JOBS_LOGGER)

    def ran(
        self,
        task: str,
        queue: str,
        attempt: int,
        finished: Finished,
        duration_s: float | None,
    ) -> None:
        """Log how a job ended (`finished`); `duration_s` is None for a job that never ran."""
        logger = self.logger
        if finished.kind == "succeeded":
            # The hot path: one level check, one record, no dict, no caller lookup.
            if not logger.isEnabledFor(_INFO):
                return
            record = logger.makeRecord(
                logger.name, _INFO, "", 0, "%s succeeded in %.4fs", (task, duration_s), None
            )
            self._tag(record, task, queue, attempt, finished, duration_s)
            logger.handle(record)
            return
        level = _ERROR if finished.kind == "failed" else _WARNING
        if logger.isEnabledFor(level):
            self._failure(level, task, queue, attempt, finished, duration_s)

    def settled(self, assigned: Assigned, finished: Finished, duration_s: float) -> None:
        """Log a job the supervisor settled (killed at its hard limit, lost with its child)."""
        if not self.logger.isEnabledFor(_ERROR if finished.kind == "failed" else _WARNING):
            return
        try:
            queue = decode_record(assigned.job.payload).queue  # rare: the envelope lacks it
        except msgspec.DecodeError:
            queue = "?"
        job = assigned.job
        self.ran(assigned.task or "?", queue, job.attempt, finished, duration_s)

    def _failure(
        self,
        level: int,
        task: str,
        queue: str,
        attempt: int,
        finished: Finished,
        duration_s: float | None,
    ) -> None:
        error = _error(finished.outcome)
        cause = f"{error.type}: {error.message}" if error is not None else "no error recorded"
        took = f" in {duration_s:.4f}s" if duration_s is not None else ""
        delay_s = finished.retry_delay_ms / 1000
        kind = finished.kind
        if kind == "retrying":
            message = f"{task} failed{took}, retrying in {delay_s:g}s: {cause}"
        elif kind == "limited":
            message = f"{task} was rate limited{took}, runs again in {delay_s:g}s: {cause}"
        elif kind == "deferred":
            message = f"{task} is not a task of this worker: deferred {delay_s:g}s ({cause})"
        else:
            message = f"{task} failed for good{took} on attempt {attempt}: {cause}"
        record = self.logger.makeRecord(self.logger.name, level, "", 0, message, (), None)
        self._tag(record, task, queue, attempt, finished, duration_s)
        if kind in ("retrying", "limited", "deferred"):
            record.errands_retry_in_s = delay_s
        if error is not None:
            record.errands_error_type = error.type
            record.errands_error = error.message
            if kind == "failed" and error.traceback:
                record.errands_traceback = error.traceback
        self.logger.handle(record)

    @staticmethod
    def _tag(
        record: logging.LogRecord,
        task: str,
        queue: str,
        attempt: int,
        finished: Finished,
        duration_s: float | None,
    ) -> None:
        record.errands_job_id = finished.id
        record.errands_task = task
        record.errands_queue = queue
        record.errands_attempt = attempt
        record.errands_outcome = finished.kind
        if duration_s is not None:
            record.errands_duration_s = round(duration_s, 6)


class ReapedLog:
    """Logs the jobs Redis sent to the dead set by a call of this worker (stalled, corrupt).

    No process ran them to an outcome, so none logged them; the reply names only the id, so the
    task is read back from the dead job's record, off the supervisor's path (best effort:
    "?" when Redis cannot tell).

    Args:
        app: the app whose broker holds them.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.logger = logging.getLogger(JOBS_LOGGER)
        self._reads: set[asyncio.Task[None]] = set()

    def note(self, queue: str, died: Sequence[tuple[str, bytes]]) -> None:
        """Jobs of `queue` died by a call of ours: log those Redis settled itself."""
        if not self.logger.isEnabledFor(_ERROR):
            return
        settled: list[tuple[str, ErrorInfo]] = []
        for job_id, outcome in died:
            error = error_of(outcome)
            if error is not None and error.type in _SETTLED_IN_REDIS:
                settled.append((job_id, error))
        if not settled:
            return
        try:
            read = asyncio.get_running_loop().create_task(self._log(queue, settled))
        except RuntimeError:  # no loop (a synchronous caller): no task names, but the lines
            for job_id, error in settled:
                self._line(queue, job_id, "?", error)
            return
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)

    async def written(self) -> None:
        """Return once every line being written (their task names read back) is out."""
        await asyncio.gather(*self._reads)

    async def _log(self, queue: str, settled: Sequence[tuple[str, ErrorInfo]]) -> None:
        for job_id, error in settled:
            self._line(queue, job_id, await self._task_of(queue, job_id), error)

    async def _task_of(self, queue: str, job_id: str) -> str:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                detail = await self.app.inspector.ajob(queue, job_id)
        except Exception:  # noqa: BLE001 - a log line must not fail: say we could not tell
            return "?"
        return detail.task if detail is not None and detail.task else "?"

    def _line(self, queue: str, job_id: str, task: str, error: ErrorInfo) -> None:
        message = f"{task} is dead: {error.type}: {error.message}"
        record = self.logger.makeRecord(self.logger.name, _ERROR, "", 0, message, (), None)
        record.errands_job_id = job_id
        record.errands_task = task
        record.errands_queue = queue
        record.errands_outcome = "dead"
        record.errands_error_type = error.type
        record.errands_error = error.message
        self.logger.handle(record)
