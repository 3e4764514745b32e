"""Tasks: a function registered on an app, its options, `delay` / `apply_async`, and `.s()`.

`Task` is generic over the function's parameters and return type, so mypy checks the arguments
of `delay` and `.s()` and the type `get()` returns.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, NoReturn, ParamSpec, TypeVar

import msgspec

from errands.arity import arity_checker
from errands.broker.types import NewJob
from errands.errors import ArgumentError, ConfigurationError, TaskCalledDirectly
from errands.limits import Limiter, limit_records
from errands.message import JobRecord, Link, check_arguments, encode_record, payload_bound
from errands.result import AsyncResult, seconds
from errands.retry import RetryPolicy

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["CallOptions", "Signature", "Task", "TaskOptions", "check_limits", "check_priority"]

P = ParamSpec("P")
R = TypeVar("R")
IdempotencyMode = Literal["window", "until_finished"]


def check_priority(priority: int) -> int:
    """Return `priority` if it is an int from 0 to 9, else raise `ConfigurationError`."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise ConfigurationError(
            f"priority must be an int from 0 to 9 (9 runs first), not {priority!r}"
        )
    return priority


def check_limits(soft: float | None, hard: float | None) -> None:
    """Refuse time limits that are not positive, or a soft limit not below the hard one."""
    for name, value in (("soft_time_limit", soft), ("time_limit", hard)):
        if value is not None and not 0 < value < math.inf:
            raise ConfigurationError(
                f"{name} must be a positive number of seconds, not {value!r}: time limits are "
                "finite in errands; give a larger number for a long task"
            )
    if soft is not None and hard is not None and soft >= hard:
        raise ConfigurationError(
            f"soft_time_limit ({soft}s) must be below time_limit ({hard}s), so the task can clean "
            "up before it is killed"
        )


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Everything the app knows about a task besides its function.

    Attributes:
        name: the registered name (module.function by default).
        queue: the queue its jobs go to unless a call says otherwise.
        priority: 0-9, higher runs first inside a queue.
        retry: the retry policy (limit, which errors, backoff with jitter).
        soft_time_limit: seconds before `SoftTimeLimitExceeded` is raised inside the task.
        time_limit: seconds before the process running it is killed.
        bind: pass a `TaskContext` as the first argument.
        ignore_result: do not store the result (nobody will `get()` it).
        result_ttl: seconds a result is kept.
        idempotency_ttl: seconds an idempotency key holds, by default.
        max_stalls: lease expiries (dead workers) tolerated before the job is declared poison.
        extras: options for the app's middleware (each reads those it names).
        limiters: the rate limits and concurrency caps its jobs wait for (`errands.limits`).
        unique: derive each job's idempotency key from the task name and its arguments, so a
            second job with the same arguments is not enqueued while the first holds the key:
            "window" (the key's ttl) or "until_finished" (until the first job ends); None: no.
    """

    name: str
    queue: str
    priority: int
    retry: RetryPolicy
    soft_time_limit: float
    time_limit: float
    bind: bool = False
    ignore_result: bool = False
    result_ttl: float = 86_400.0
    idempotency_ttl: float = 86_400.0
    max_stalls: int = 1
    extras: Mapping[str, Any] = field(default_factory=dict)
    limiters: tuple[Limiter, ...] = ()
    unique: IdempotencyMode | None = None

    def __post_init__(self) -> None:
        check_priority(self.priority)
        check_limits(self.soft_time_limit, self.time_limit)
        for name, ttl in (
            ("result_ttl", self.result_ttl),
            ("idempotency_ttl", self.idempotency_ttl),
        ):
            if not 0 < ttl < math.inf:
                raise ConfigurationError(
                    f"{name} must be a positive, finite number of seconds, not {ttl!r}: "
                    "nothing is kept forever in errands"
                )
        if (
            isinstance(self.max_stalls, bool)
            or not isinstance(self.max_stalls, int)
            or self.max_stalls < 0
        ):
            raise ConfigurationError(f"max_stalls must be an int >= 0, not {self.max_stalls!r}")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Options of one call (`apply_async`), never mixed with the task's own arguments.

    Attributes:
        countdown: seconds (or a timedelta) to wait before the job may run.
        eta: the earliest time the job may run (an aware datetime).
        priority: overrides the task's priority.
        queue: overrides the task's queue.
        idempotency_key: a second job with the same key inside its window is not enqueued;
            the call returns the first job instead.
        idempotency_ttl: the key's window in seconds (the app's default when None).
        idempotency_mode: "window" holds the key for the ttl; "until_finished" releases it
            when the job ends (the ttl still bounds it).
        job_id: a job id of your own; a second enqueue of a known id is a no-op.
        soft_time_limit: overrides the task's soft limit for this job.
        time_limit: overrides the task's hard limit for this job.
    """

    countdown: float | timedelta | None = None
    eta: datetime | None = None
    priority: int | None = None
    queue: str | None = None
    idempotency_key: str | None = None
    idempotency_ttl: float | timedelta | None = None
    idempotency_mode: IdempotencyMode = "window"
    job_id: str | None = None
    soft_time_limit: float | timedelta | None = None
    time_limit: float | timedelta | None = None


#: The options of a call that gives none (shared: `CallOptions` is frozen, and making one costs
#: more than the rest of a signature).
NO_OPTIONS = CallOptions()


def _delay_ms(options: CallOptions) -> int:
    if options.countdown is not None and options.eta is not None:
        raise ConfigurationError("give countdown or eta, not both")
    if options.countdown is not None:
        return max(0, int(seconds(options.countdown) * 1000))
    if options.eta is not None:
        if options.eta.tzinfo is None:
            raise ConfigurationError(
                "eta must be an aware datetime: pass datetime.now(timezone.utc) + ..., "
                "not a naive one"
            )
        return max(0, int((options.eta.timestamp() - time.time()) * 1000))
    return 0


class _IdSource:
    """128-bit random job ids, read from the OS 256 at a time (a syscall per id is slow).

    The buffer is dropped in a forked child, so parent and child never hand out the same id.
    """

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        """Forget the buffered randomness (called in a forked child)."""
        self._hex, self._at = "", 0

    def __call__(self) -> str:
        if self._at >= len(self._hex):
            self._hex, self._at = os.urandom(16 * 256).hex(), 0
        start = self._at
        self._at = start + 32
        return self._hex[start : start + 32]


#: A new random job id (32 hex characters).
new_job_id = _IdSource()


class CheckedCall(NamedTuple):
    """What the checks of one call found: everything a job needs besides its id and payload."""

    queue: str
    soft_time_limit: float | None  # the call's own, None: the task's
    time_limit: float | None
    priority: int
    delay_ms: int
    idempotency_ttl_ms: int
    limits: tuple[str, ...]  # the limiter records its job counts against
    idempotency_key: str | None  # the call's, or the one `unique` derives
    idempotency_mode: IdempotencyMode


def unique_key(task: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The idempotency key of a `unique` task's job: its name and a digest of its arguments.

    Keyword arguments are taken in sorted order, so ``f(a=1, b=2)`` and ``f(b=2, a=1)`` match.
    """
    encoded = _sorted_encoder.encode([list(args), dict(kwargs)])
    return f"errands:unique:{task}:{hashlib.blake2b(encoded, digest_size=16).hexdigest()}"


_sorted_encoder = msgspec.json.Encoder(order="sorted")


def _check_call(
    task: TaskOptions, args: Sequence[Any], kwargs: Mapping[str, Any], options: CallOptions
) -> CheckedCall:
    """Check a call's arguments and options."""
    if options.idempotency_mode not in ("window", "until_finished"):
        raise ConfigurationError(
            "idempotency_mode must be 'window' or 'until_finished', "
            f"not {options.idempotency_mode!r}"
        )
    if not isinstance(args, (list, tuple)):
        raise ConfigurationError(
            f"args must be a list or tuple of arguments, not {type(args).__name__}"
        )
    check_arguments(args, kwargs)
    call_soft = None if options.soft_time_limit is None else seconds(options.soft_time_limit)
    call_hard = None if options.time_limit is None else seconds(options.time_limit)
    if call_soft is not None or call_hard is not None:
        # The task's own limits were checked when it was registered.
        check_limits(
            call_soft if call_soft is not None else task.soft_time_limit,
            call_hard if call_hard is not None else task.time_limit,
        )
    priority = task.priority if options.priority is None else check_priority(options.priority)
    delay_ms = _delay_ms(options)  # refuses countdown with eta, and a naive eta
    ttl = options.idempotency_ttl if options.idempotency_ttl is not None else task.idempotency_ttl
    ttl_s = seconds(ttl) if isinstance(ttl, (int, float, timedelta)) else math.nan
    if not 0 < ttl_s < math.inf:
        raise ConfigurationError(
            f"idempotency_ttl must be a positive number of seconds or a timedelta, not {ttl!r}"
        )
    queue = options.queue or task.queue
    limits = limit_records(task.limiters, args, kwargs) if task.limiters else ()
    key, mode = options.idempotency_key, options.idempotency_mode
    if key is None and task.unique is not None:
        key, mode = unique_key(task.name, args, kwargs), task.unique
    return CheckedCall(
        queue, call_soft, call_hard, priority, delay_ms, int(ttl_s * 1000), limits, key, mode
    )


def check_job(
    task: TaskOptions,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: CallOptions,
    max_payload_bytes: int,
) -> CheckedCall:
    """Make every check of `build_job` without building the job, which costs more.

    After it, `build_job` given what it returns cannot fail for the same call: the payload is
    measured against an upper bound of its size, and built here only when that bound is over
    the limit.
    """
    checked = _check_call(task, args, kwargs, options)
    job_id = options.job_id or "0" * 32
    if payload_bound(task.name, checked.queue, job_id, args, kwargs) > max_payload_bytes:
        build_job(task, args, kwargs, options, max_payload_bytes, checked=checked)  # exact
    return checked


def build_job(
    task: TaskOptions,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: CallOptions,
    max_payload_bytes: int,
    links: list[Link] | None = None,
    *,
    checked: CheckedCall | None = None,
    scheduled_for: float | None = None,
    headers: dict[str, Any] | None = None,
) -> tuple[str, NewJob]:
    """Check the arguments and options of one call and build the job to enqueue.

    `checked`, what `check_job` found for this call, saves checking it twice; `scheduled_for`
    is the nominal time of a schedule's fire (``ctx.scheduled_for``); `headers`, the job's
    headers from the start (a chain step's, `Middleware.follow_up_headers`).

    Returns:
        The queue name and the job.
    """
    checked = checked or _check_call(task, args, kwargs, options)
    queue, priority = checked.queue, checked.priority
    job_id = options.job_id or new_job_id()
    record = JobRecord(
        id=job_id,
        task=task.name,
        queue=queue,
        args=list(args),
        kwargs=dict(kwargs),
        priority=priority,
        enqueued_at=time.time(),
        soft_time_limit=checked.soft_time_limit,
        time_limit=checked.time_limit,
        links=links,
        headers=headers,
        scheduled_for=scheduled_for,
    )
    member = links[0] if links and links[0].chord else None  # a chord member: its meta says so
    job = NewJob(
        id=job_id,
        payload=encode_record(record, max_payload_bytes),
        priority=priority,
        delay_ms=checked.delay_ms,
        idempotency_key=checked.idempotency_key,
        idempotency_ttl_ms=checked.idempotency_ttl_ms,
        idempotency_mode=checked.idempotency_mode,
        max_attempts=task.retry.max_attempts,
        result_ttl_ms=int(task.result_ttl * 1000),
        ignore_result=task.ignore_result,
        max_stalls=task.max_stalls,
        chord=member.chord if member else "",
        chord_queue=(member.queue or "") if member else "",
        chord_index=member.index if member else 0,
        limits=checked.limits,
    )
    return queue, job


class Signature(Generic[R]):
    """A task call with its arguments, not sent yet: the unit of chains and groups.

    Args:
        task: the task to call.
        args: positional arguments.
        kwargs: keyword arguments.
        options: call options (`CallOptions` fields).
        partial: in a chain, the previous step's result is passed as the first argument
            (made by `Task.partial`; a `Task.s` signature gets exactly its own arguments).
    """

    __slots__ = ("args", "kwargs", "options", "partial", "task")

    def __init__(
        self,
        task: Task[..., R],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        options: CallOptions | None = None,
        *,
        partial: bool = False,
    ) -> None:
        self.task = task
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.options = options or NO_OPTIONS
        self.partial = partial

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name}.{'partial' if self.partial else 's'}({', '.join(parts)})"

    def __or__(self, other: Signature[Any]) -> Any:
        """``a.s() | b.partial()`` is ``chain(a.s(), b.partial())``."""
        from errands.workflow import chain  # noqa: PLC0415 - workflow builds on this module

        return chain(self, other)

    def set(self, **options: Any) -> Signature[R]:
        """A copy with call options changed (countdown, priority, queue, idempotency_key...)."""
        return Signature(
            self.task, self.args, self.kwargs, _merge(self.options, options), partial=self.partial
        )

    def check(self, previous: bool = False) -> None:
        """Refuse arguments that do not fit (with a placeholder for a previous result)."""
        args = (None, *self.args) if previous and self.partial else self.args
        self.task.check_call(args, self.kwargs)
        check_arguments(self.args, self.kwargs)

    def to_link(self) -> Link:
        """This signature as a chain step stored in its parent job."""
        countdown = self.options.countdown
        return Link(
            task=self.task.name,
            args=list(self.args),
            kwargs=self.kwargs,
            queue=self.options.queue,
            priority=self.options.priority,
            immutable=not self.partial,
            countdown=None if countdown is None else seconds(countdown),
        )

    def delay(self) -> AsyncResult[R]:
        """Send this call."""
        return self.task.apply_async(self.args, self.kwargs, options=self.options)

    async def adelay(self) -> AsyncResult[R]:
        """Async twin of `delay`."""
        return await self.task.aapply_async(self.args, self.kwargs, options=self.options)


class Task(Generic[P, R]):
    """A function registered on an app; call `delay` to run it on a worker.

    Args:
        app: the app it belongs to.
        fn: the function (sync or async; with a `TaskContext` first parameter when bound).
        options: its options, already checked.
    """

    def __init__(self, app: App, fn: Callable[..., Any], options: TaskOptions) -> None:
        self.app = app
        self.fn = fn
        self.options = options
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self._arity: Callable[..., None] | None = None

    @property
    def name(self) -> str:
        """The registered name."""
        return self.options.name

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refuse a call: a task is sent with `delay`, or run here through `fn`.

        Raises:
            TaskCalledDirectly: always, naming both ways with the arguments given.
        """
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        if len(shown) > 60:
            shown = "..."
        name = self.fn.__name__ if hasattr(self.fn, "__name__") else self.name
        raise TaskCalledDirectly(
            f"Task {name} is not a function: call {name}.delay({shown}) (or .apply_async) to "
            f"enqueue it, or {name}.fn({shown}) to run it here"
        )

    def check_call(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Refuse arguments that do not fit the function, with Python's own message."""
        if self._arity is None:
            # A bound task's context is passed by the worker, not by the caller.
            self._arity = arity_checker(self.fn, skip_first=self.options.bind)
        try:
            self._arity(*args, **kwargs)
        except TypeError as error:
            raise ArgumentError(f"task {self.name!r}: {error}") from None

    def _prepare(
        self, args: Sequence[Any], kwargs: Mapping[str, Any] | None, options: CallOptions
    ) -> tuple[str, NewJob]:
        self.check_call(args, kwargs or {})
        return build_job(self.options, args, kwargs or {}, options, self.app.max_payload_bytes)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send a job with these arguments; they must be JSON values."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Async twin of `delay`."""
        return await self.aapply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        options: CallOptions | None = None,
        **call_options: Any,
    ) -> AsyncResult[R]:
        """Send a job with call options.

        Call options are the fields of `CallOptions`: countdown, eta, priority, queue,
        idempotency_key, idempotency_ttl, idempotency_mode, job_id, soft_time_limit, time_limit.
        """
        queue, job = self._prepare(args, kwargs, _merge(options, call_options))
        done = self.app.send(queue, [job])[0]
        return AsyncResult(self.app, done.id, queue, ignore_result=self.options.ignore_result)

    async def aapply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        options: CallOptions | None = None,
        **call_options: Any,
    ) -> AsyncResult[R]:
        """Async twin of `apply_async`."""
        queue, job = self._prepare(args, kwargs, _merge(options, call_options))
        done = (await self.app.asend(queue, [job]))[0]
        return AsyncResult(self.app, done.id, queue, ignore_result=self.options.ignore_result)

    def s(self, *args: P.args, **kwargs: P.kwargs) -> Signature[R]:
        """A signature: this task with these arguments, to send later or in a workflow."""
        return Signature(self, args, kwargs)

    def partial(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """A chain step that receives the previous step's result as its first argument."""
        return Signature(self, args, kwargs, partial=True)


def _merge(options: CallOptions | None, call_options: Mapping[str, Any]) -> CallOptions:
    base = options or NO_OPTIONS
    if not call_options:
        return base
    unknown = set(call_options) - set(CallOptions.__dataclass_fields__)
    if unknown:
        raise ConfigurationError(
            f"unknown call option(s) {', '.join(sorted(unknown))}: task arguments go in args= and "
            f"kwargs=; call options are {', '.join(CallOptions.__dataclass_fields__)}"
        )
    return replace(base, **call_options)
