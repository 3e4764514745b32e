"""Running one job: decode it, find its task, call it with a context, and say how it ended.

Shared by every pool: the child processes, the in-process pools (solo, async) and
`errands.testing`. It decides retry or failure with the task's policy; the broker still refuses a
retry past the job's max attempts.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from errands.context import TaskContext
from errands.errors import (
    ArgumentError,
    ErrandsError,
    RateLimited,
    Retry,
    SoftTimeLimitExceeded,
    TaskNotFound,
)
from errands.message import JobRecord, check_json, decode_record
from errands.middleware import Execution, ExecutionState
from errands.progress import ProgressSink
from errands.result import ErrorInfo, OutcomeRecord
from errands.task import CallOptions, Task, TaskOptions, build_job
from errands.worker.outcome_log import OutcomeLog
from errands.worker.protocol import Finished, FollowUp, Job
from errands.workflow import next_job_id

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["Executor", "Prepared", "error_name"]

_MAX_TRACEBACK = 16_000
# A job of an unknown task waits a quarter of its age, between these bounds, before it is tried
# again (a worker that has the task may have started meanwhile).
_UNKNOWN_FIRST_S = 1.0
_UNKNOWN_MAX_S = 60.0
_encoder = msgspec.json.Encoder()
_NO_HEADERS: Mapping[str, Any] = MappingProxyType({})  # most jobs carry none: one, read-only

SoftLimit = Callable[[float], AbstractContextManager[None]]


def error_name(error: BaseException) -> str:
    """The qualified name of an error's type (builtins stay short: ``ValueError``)."""
    kind = type(error)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _no_soft_limit(_seconds: float) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass(slots=True)
class Prepared:
    """A decoded job, ready to run."""

    job: Job
    record: JobRecord
    task: Task[..., Any]
    context: TaskContext
    soft_limit_s: float
    hard_limit_s: float
    error: BaseException | None = None  # what the task raised, for `Execution.exception`

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` task."""
        return inspect.iscoroutinefunction(self.task.fn)


class Executor:
    """Runs jobs of one app.

    Args:
        app: the app whose tasks run here.
        is_cancelled: tells whether a job id was asked to stop.
        progress: where ``ctx.set_progress`` reports go (None: checked, then dropped).
        outcomes: where each job's line goes (`errands.worker.outcome_log`; None: no line).
    """

    def __init__(
        self,
        app: App,
        is_cancelled: Callable[[str], bool],
        progress: ProgressSink | None = None,
        outcomes: OutcomeLog | None = None,
    ) -> None:
        self.app = app
        self._is_cancelled = is_cancelled
        self._progress = progress
        self._outcomes = outcomes
        self._signatures: dict[str, inspect.Signature] = {}
        self._observed = app.middleware.executing  # run the execute hooks (a cost only then)

    # Outcomes ---------------------------------------------------------------------------------

    @staticmethod
    def succeeded(job_id: str, attempt: int, value: Any) -> Finished:
        """The outcome of a job that returned `value`; one that is not a JSON value fails.

        The failure is the attempt's, as if the task had raised `ArgumentError`, and it is not
        retried: the same code would return the same value again.
        """
        try:
            check_json(value, "the result")
            record = OutcomeRecord("succeeded", value, attempts=attempt, finished_at=time.time())
            return Finished(job_id, "succeeded", _encoder.encode(record))
        except ArgumentError as error:
            return Executor.failed(job_id, attempt, None, error, retry=False, tb="")
        except Exception as error:  # noqa: BLE001 - whatever breaks the encoder fails the job
            refused = ArgumentError(f"the result cannot be encoded as JSON: {error!r}")
            return Executor.failed(job_id, attempt, None, refused, retry=False, tb="")

    @staticmethod
    def failed(
        job_id: str,
        attempt: int,
        options: TaskOptions | None,
        error: BaseException,
        *,
        retry: bool | None = None,
        tb: str | None = None,
    ) -> Finished:
        """The outcome of a job that raised `error`: retry (with a delay) or fail.

        Args:
            job_id: the job.
            attempt: the attempt that failed.
            options: the task's options (None: the task is unknown, never retried).
            error: what was raised (or what happened: TimeLimitExceeded, WorkerLost).
            retry: force the decision; the task's policy decides when None.
            tb: the traceback text; the current exception's when None.
        """
        recorded = error.exc if isinstance(error, Retry) and error.exc is not None else error
        text = tb if tb is not None else traceback.format_exc()
        info = ErrorInfo(error_name(recorded), str(recorded), text[-_MAX_TRACEBACK:] or None)
        record = OutcomeRecord("failed", error=info, attempts=attempt, finished_at=time.time())
        payload = _encoder.encode(record)
        if isinstance(error, RateLimited) and options is not None and retry is None:
            # Run again later, no attempt spent (Redis charges one past MAX_RATE_LIMITED).
            return Finished(job_id, "limited", payload, int(error.retry_after * 1000))
        policy = options.retry if options is not None else None
        wants_retry = retry if retry is not None else bool(policy and policy.retryable(error))
        if policy is not None and wants_retry and attempt <= policy.max_retries:
            delay_ms = int(policy.delay_s(attempt, error) * 1000)
            return Finished(job_id, "retrying", payload, delay_ms)
        return Finished(job_id, "failed", payload)

    def _success(self, prepared: Prepared, value: Any) -> Finished:
        """The outcome of a job that returned; whatever goes wrong building it fails the job.

        The job is not retried then (it would return the same), and its process lives on.
        """
        try:
            return self._succeeded_with_steps(prepared, value)
        except Exception as error:  # noqa: BLE001 - never lose an outcome to a bug of ours
            job = prepared.job
            return self.failed(job.id, job.attempt, None, error, retry=False)

    def _succeeded_with_steps(self, prepared: Prepared, value: Any) -> Finished:
        """The outcome of a job that returned, with its chain's next step to enqueue first."""
        links = prepared.record.links
        if prepared.task.options.ignore_result and not links:
            return Finished(prepared.job.id, "succeeded", b"")  # nothing stored: build no record
        finished = self.succeeded(prepared.job.id, prepared.job.attempt, value)
        if finished.kind != "succeeded" or not links:
            return finished
        step, rest = links[0], links[1:]
        if step.chord:
            report = FollowUp(
                step.queue or "", chord=step.chord, index=step.index, data=_encoder.encode(value)
            )
            return Finished(finished.id, "succeeded", finished.outcome, follow_ups=[report])
        try:
            options = self.app.options_for(step.task, step.queue)
            args = step.args if step.immutable else [value, *step.args]
            queue, job = build_job(
                options,
                args,
                step.kwargs,
                CallOptions(
                    queue=step.queue,
                    priority=step.priority,
                    countdown=step.countdown,
                    job_id=next_job_id(prepared.job.id),
                    # The id dedupes while the step lives or its result is kept; the key,
                    # for its window, whether the step kept a result or not.
                    idempotency_key=f"errands:chain:{prepared.job.id}",
                ),
                self.app.max_payload_bytes,
                links=rest or None,
                headers=self.app.middleware.follow_up_headers(prepared.context),
            )
        except ErrandsError as error:
            return self.failed(prepared.job.id, prepared.job.attempt, None, error, retry=False)
        return Finished(
            finished.id, "succeeded", finished.outcome, follow_ups=[FollowUp(queue, job)]
        )

    # Preparing ---------------------------------------------------------------------------------

    def prepare(self, job: Job) -> Prepared | Finished:
        """Decode a job and find its task; a job that cannot run gets its failure now."""
        try:
            record = decode_record(job.payload)
        except msgspec.DecodeError as error:
            broken = self.failed(job.id, job.attempt, None, error, retry=False, tb="")
            if self._outcomes is not None:
                self._outcomes.ran("?", "?", job.attempt, broken, None)
            return broken
        try:
            task = self.app.get_task(record.task)
        except TaskNotFound as error:
            deferred = self._unknown_task(job, record, error)
            if self._outcomes is not None:
                self._outcomes.ran(record.task, record.queue, job.attempt, deferred, None)
            return deferred
        options = task.options
        soft = record.soft_time_limit or options.soft_time_limit
        hard = record.time_limit or options.time_limit
        context = TaskContext(
            id=job.id,
            task=task.name,
            attempt=job.attempt,
            max_retries=options.retry.max_retries,
            queue=record.queue,
            priority=record.priority,
            deadline=time.time() + soft,
            headers=record.headers or _NO_HEADERS,
            extras=options.extras,
            scheduled_for=(
                datetime.fromtimestamp(record.scheduled_for, UTC)
                if record.scheduled_for is not None
                else None
            ),
            _cancelled=lambda: self._is_cancelled(job.id),
            _progress=self._progress,
        )
        return Prepared(job, record, task, context, soft, hard)

    def _unknown_task(self, job: Job, record: JobRecord, error: TaskNotFound) -> Finished:
        """A job of a task this worker does not have: wait for a worker that does, a while.

        In a rolling deploy producers may ship a task before the workers that run it: the job
        is deferred (no attempt spent) with a delay that grows with its age, until
        `App.unknown_task_window` from its enqueue has passed; then it fails for good.
        """
        age_s = time.time() - record.enqueued_at if record.enqueued_at else math.inf
        if age_s >= self.app.unknown_task_window:
            return self.failed(job.id, job.attempt, None, error, retry=False, tb="")
        pause_s = min(max(_UNKNOWN_FIRST_S, age_s / 4), _UNKNOWN_MAX_S)
        delay_ms = int(random.uniform(pause_s / 2, pause_s) * 1000)
        why = ErrorInfo(error_name(error), str(error))
        deferred = OutcomeRecord("deferred", error=why, attempts=job.attempt)
        return Finished(job.id, "deferred", _encoder.encode(deferred), delay_ms)

    def _failed_run(self, prepared: Prepared, error: BaseException) -> Finished:
        """The outcome of a task that raised; arguments that do not fit are never retried."""
        job, options = prepared.job, prepared.task.options
        prepared.error = error
        if isinstance(error, TypeError):
            # Checked only after a TypeError, so the hot path pays nothing for it.
            try:
                self._signature(prepared.task).bind(
                    *self._call_args(prepared), **prepared.record.kwargs
                )
            except TypeError as mismatch:
                refused = ArgumentError(
                    f"the arguments of job {job.id} do not fit task {prepared.task.name!r}: "
                    f"{mismatch}; a producer and this worker may run different versions of it"
                )
                return self.failed(job.id, job.attempt, options, refused, retry=False, tb="")
        return self.failed(job.id, job.attempt, options, error)

    def _signature(self, task: Task[..., Any]) -> inspect.Signature:
        found = self._signatures.get(task.name)
        if found is None:
            found = self._signatures[task.name] = inspect.signature(task.fn)
        return found

    @staticmethod
    def _call_args(prepared: Prepared) -> list[Any]:
        if prepared.task.options.bind:
            return [prepared.context, *prepared.record.args]
        return prepared.record.args

    # Running -----------------------------------------------------------------------------------

    def run_sync(self, prepared: Prepared, soft_limit: SoftLimit = _no_soft_limit) -> Finished:
        """Run a sync task here, its soft limit armed by `soft_limit`; log how it ended."""
        finished = self._hooked_sync(prepared, soft_limit)
        if self._outcomes is not None:
            self._ran(prepared, finished)
        return finished

    async def run_async(self, prepared: Prepared) -> Finished:
        """Run an async task on the running loop (its soft limit cancels it); log how it ended."""
        finished = await self._hooked_async(prepared)
        if self._outcomes is not None:
            self._ran(prepared, finished)
        return finished

    def _ran(self, prepared: Prepared, finished: Finished) -> None:
        if self._outcomes is not None:
            job = prepared.job
            self._outcomes.ran(
                prepared.task.name, prepared.record.queue, job.attempt, finished, finished.run_s
            )

    def _hooked_sync(self, prepared: Prepared, soft_limit: SoftLimit) -> Finished:
        """Run a sync task here, its soft limit armed by `soft_limit`, and the execute hooks."""
        waited = _waited(prepared)
        if not self._observed:
            started = time.perf_counter()
            return _timed(self._run_sync(prepared, soft_limit), started, waited)
        middleware = self.app.middleware
        middleware.before_execute(prepared.context)
        started = time.perf_counter()
        finished = self._run_sync(prepared, soft_limit)
        middleware.after_execute(prepared.context, _execution(prepared, finished, started))
        return _timed(finished, started, waited)

    async def _hooked_async(self, prepared: Prepared) -> Finished:
        """Run an async task on the running loop (its soft limit cancels it), and the hooks."""
        waited = _waited(prepared)
        if not self._observed:
            started = time.perf_counter()
            return _timed(await self._run_async(prepared), started, waited)
        middleware = self.app.middleware
        middleware.before_execute(prepared.context)
        started = time.perf_counter()
        finished = await self._run_async(prepared)
        middleware.after_execute(prepared.context, _execution(prepared, finished, started))
        return _timed(finished, started, waited)

    def _run_sync(self, prepared: Prepared, soft_limit: SoftLimit) -> Finished:
        prepared.context.deadline = time.time() + prepared.soft_limit_s  # it starts now
        token = prepared.context.activate()
        try:
            with soft_limit(prepared.soft_limit_s):
                value = prepared.task.fn(*self._call_args(prepared), **prepared.record.kwargs)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - a task's exit is its failure
            return self._failed_run(prepared, error)
        finally:
            TaskContext.deactivate(token)
        return self._success(prepared, value)

    async def _run_async(self, prepared: Prepared) -> Finished:
        token = prepared.context.activate()
        try:
            coroutine = prepared.task.fn(*self._call_args(prepared), **prepared.record.kwargs)
            limit = asyncio.timeout(prepared.soft_limit_s)
            try:
                async with limit:
                    value = await coroutine
            except TimeoutError:
                if not limit.expired():
                    raise  # the task's own timeout, not ours
                raise SoftTimeLimitExceeded(
                    f"soft time limit of {prepared.soft_limit_s:g}s exceeded"
                ) from None
        except (Exception, SystemExit) as error:  # noqa: BLE001 - a task's exit is its failure
            return self._failed_run(prepared, error)
        except asyncio.CancelledError as error:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the worker is cancelling this job (shutdown): not the task's outcome
            return self._failed_run(prepared, error)  # the task cancelled something and let it out
        finally:
            TaskContext.deactivate(token)
        return self._success(prepared, value)


def _waited(prepared: Prepared) -> float:
    """Seconds from the job's enqueue to now, its first run's start (-1: a retry, or unknown)."""
    enqueued_at = prepared.record.enqueued_at
    if prepared.job.attempt != 1 or not enqueued_at:
        return -1.0
    return max(time.time() - enqueued_at, 0.0)


def _timed(finished: Finished, started: float, waited: float) -> Finished:
    """`finished` with its run time (from `started`, a perf_counter reading) and wait time."""
    return msgspec.structs.replace(finished, run_s=time.perf_counter() - started, wait_s=waited)


def _execution(prepared: Prepared, finished: Finished, started: float) -> Execution:
    """How a run ended, for `after_execute`, as this process sees it."""
    # A deferred job never ran (its task is unknown here), so it has no hooks: never "deferred".
    # A limited one (RateLimited) runs again, as a retry does, without spending an attempt.
    kind = finished.kind
    state: ExecutionState = (
        "failed" if kind == "deferred" else "retrying" if kind == "limited" else kind
    )
    if state == "retrying" and prepared.context.is_cancelled():
        state = "cancelled"  # Redis ends a retry of a job asked to stop
    error = None
    if finished.kind != "succeeded" and finished.outcome:
        error = msgspec.json.decode(finished.outcome, type=OutcomeRecord).error
    exception = prepared.error if state != "succeeded" else None
    return Execution(state, time.perf_counter() - started, error, exception)
