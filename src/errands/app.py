"""`App`: configuration, the task registry and the broker. No I/O at construction."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Literal,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    overload,
)

import msgspec
from typing_extensions import Unpack

from errands.broker.base import Broker, BrokerSettings, Inspector
from errands.broker.types import Enqueued, NewJob
from errands.context import TaskContext
from errands.errors import BrokerError, ConfigurationError, TaskNotFound
from errands.limits import (
    Limiter,
    Rate,
    check_shared_queue,
    pack_limiters,
    rate_of,
)
from errands.middleware import Middleware, Middlewares
from errands.observe.events import check_events_maxlen
from errands.result import AsyncResult, seconds
from errands.retry import RetryPolicy
from errands.schedule.manager import Schedules, schedule_def
from errands.schedule.records import ScheduleDef
from errands.sending import Sender
from errands.task import (
    CallOptions,
    CheckedCall,
    Signature,
    Task,
    TaskOptions,
    build_job,
    check_job,
    check_limits,
)
from errands.task_options import TaskOptionsKw, build_task_options

if TYPE_CHECKING:
    from errands.observe.alerts import AlertRule, Alerts, Sink

__all__ = ["DEFAULT_BROKER_URL", "App", "TaskOptionsKw"]

# Jobs per enqueue call. All calls go out before any reply is read, so they share one round trip
# whatever their size; a call must be small enough that Redis runs it while the next is packed,
# and that it holds Redis (which runs one call at a time and serves the workers too) for a couple
# of milliseconds at most. At most the Redis broker's ENQUEUE_CHUNK, which its enqueue_batches
# takes in one call. The measurements: docs/performance.md.
_ENQUEUE_CHUNK = 200

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

DEFAULT_BROKER_URL = "redis://localhost:6379/0"


class TaskDecorator(Protocol):
    """What ``@app.task(...)`` returns for a plain task."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class BoundTaskDecorator(Protocol):
    """What ``@app.task(bind=True, ...)`` returns: the function takes a TaskContext first."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[TaskContext, P], Coroutine[Any, Any, R]], /
    ) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[TaskContext, P], R], /) -> Task[P, R]: ...


class App:
    """An errands application: where tasks are registered and jobs are sent.

    Args:
        broker_url: the Redis URL; ``ERRANDS_BROKER_URL`` when None, else
            ``redis://localhost:6379/0``. Nothing connects until first use.
        namespace: the first part of every Redis key, so apps can share a database.
        broker: a ready broker instead of a URL (e.g. ``errands.testing.MemoryBroker()``).
        default_queue: the queue of tasks that do not name one.
        max_retries: the default retry limit of tasks (finite always).
        soft_time_limit: the default soft time limit of tasks, in seconds.
        time_limit: the default hard time limit of tasks, in seconds.
        result_ttl: how long results are kept, by default.
        idempotency_ttl: how long an idempotency key holds, by default.
        max_payload_bytes: the largest encoded job (arguments included).
        lease: how long a worker holds a job between heartbeats before it is given back.
        max_stalls: lease expiries a job survives before it is declared poison.
        dead_max_count: the dead-letter set keeps at most this many jobs per queue.
        dead_max_age: dead jobs older than this are dropped.
        unknown_task_window: a job of a task this worker does not know waits this long from
            its enqueue (deferred with growing pauses, no attempt spent) for a worker that
            knows it, as in a rolling deploy; then it fails with `TaskNotFound`.
        middleware: hooks around sending and running jobs, run in this order
            (`errands.middleware`).
        events_maxlen: keep a stream of job events per queue, of about this many events
            (``errands events``; 0, the default: none). Redis brokers only.
    """

    def __init__(
        self,
        broker_url: str | None = None,
        *,
        namespace: str = "errands",
        broker: Broker | None = None,
        default_queue: str = "default",
        max_retries: int = 3,
        soft_time_limit: float | timedelta = 300.0,
        time_limit: float | timedelta = 360.0,
        result_ttl: float | timedelta = timedelta(days=1),
        idempotency_ttl: float | timedelta = timedelta(days=1),
        max_payload_bytes: int = 256 * 1024,
        lease: float | timedelta = 30.0,
        max_stalls: int = 1,
        dead_max_count: int = 10_000,
        dead_max_age: float | timedelta = timedelta(days=7),
        unknown_task_window: float | timedelta = timedelta(minutes=15),
        middleware: Sequence[Middleware] = (),
        events_maxlen: int = 0,
    ) -> None:
        if broker_url is not None and broker is not None:
            raise ConfigurationError("give broker_url or broker, not both")
        self.broker_url = broker_url or os.environ.get("ERRANDS_BROKER_URL") or DEFAULT_BROKER_URL
        self.namespace = namespace
        self.default_queue = default_queue
        self.max_retries = max_retries
        self.soft_time_limit = seconds(soft_time_limit)
        self.time_limit = seconds(time_limit)
        check_limits(self.soft_time_limit, self.time_limit)
        self.result_ttl = seconds(result_ttl)
        self.idempotency_ttl = seconds(idempotency_ttl)
        self.max_payload_bytes = max_payload_bytes
        self.lease = seconds(lease)
        if not 1 <= self.lease < math.inf:
            raise ConfigurationError(f"lease must be a finite number of seconds >= 1, not {lease}")
        self.max_stalls = max_stalls
        self.unknown_task_window = seconds(unknown_task_window)
        if not 0 <= self.unknown_task_window < math.inf:
            raise ConfigurationError(
                f"unknown_task_window must be a finite number of seconds >= 0, not "
                f"{unknown_task_window}"
            )
        self.broker_settings = BrokerSettings(
            dead_max_count=dead_max_count,
            dead_max_age_ms=int(seconds(dead_max_age) * 1000),
            events_maxlen=check_events_maxlen(events_maxlen, broker),
        )
        self._broker = broker
        self.middleware = Middlewares(middleware)
        self.middleware.bind(self)
        self._sender = Sender(self)
        self.tasks: dict[str, Task[..., Any]] = {}
        #: The limiters of its tasks, by name (`limiter`, and each task's own rate_limit=).
        self.limiters: dict[str, Limiter] = {}
        #: The schedules declared with `periodic`, by id (stored when a scheduler starts).
        self.periodic_schedules: dict[str, ScheduleDef] = {}
        #: The alerts declared with `alerts` (None: none).
        self.alert_config: Alerts | None = None
        RetryPolicy(max_retries=max_retries)  # refuse max_retries=None here, not at first task

    def __repr__(self) -> str:
        return f"<App namespace={self.namespace!r} tasks={len(self.tasks)}>"

    @property
    def broker(self) -> Broker:
        """The broker, created on first use (no I/O until then)."""
        if self._broker is None:
            from errands.broker.redis import RedisBroker  # noqa: PLC0415 - keep import light

            self._broker = RedisBroker(
                self.broker_url, namespace=self.namespace, settings=self.broker_settings
            )
        return self._broker

    @property
    def inspector(self) -> Inspector:
        """The operator's read model of the broker: queues, jobs, workers, dead jobs.

        Every read has an async twin and every list is paged (`errands.broker.operator`).
        """
        return self.broker.inspector

    @property
    def schedules(self) -> Schedules:
        """The stored schedules: list, upsert, pause, resume, trigger, backfill, delete."""
        return Schedules(self)

    # Registration --------------------------------------------------------------------------

    def alerts(
        self, *rules: AlertRule, sinks: Sequence[Sink], every: float | timedelta = 5.0
    ) -> Alerts:
        """Declare alerts: `rules` checked every `every` s, incidents sent to `sinks`.

        Evaluated by ``errands alerts APP`` or ``errands beat`` (`errands.observe.alerts`).
        """
        from errands.observe.alerts import Alerts  # noqa: PLC0415 - only apps with alerts

        self.alert_config = Alerts(rules, sinks, every)
        return self.alert_config

    def limiter(
        self,
        name: str,
        *,
        rate: str | Rate | None = None,
        burst: int = 1,
        concurrency: int | None = None,
        key: Callable[..., Any] | None = None,
    ) -> Limiter:
        """Declare a limiter that tasks share: ``@app.task(limits=["partner-api"])``.

        Args:
            name: how tasks name it.
            rate: starts per period, e.g. ``"100/m"`` or ``"20/s"``, spread evenly (GCRA).
            burst: starts allowed at once after a quiet spell (1: never closer than the rate).
            concurrency: jobs of it running at once across every worker and host.
            key: a function of the task's arguments giving a key, for a limit per key (per
                tenant): called like the task, without its context.

        Returns:
            The limiter (also in `App.limiters`).
        """
        if name in self.limiters:
            raise ConfigurationError(
                f"a limiter named {name!r} is already declared: give this one another name"
            )
        limiter = Limiter(name, rate_of(rate), burst, concurrency, key)
        self._add_limiter(limiter)
        return limiter

    def _add_limiter(self, limiter: Limiter) -> None:
        """Register `limiter`; every fetch of this app's workers carries it from now on."""
        self.limiters[limiter.name] = limiter
        self.broker_settings = msgspec.structs.replace(
            self.broker_settings, limits=pack_limiters(self.limiters.values())
        )
        if self._broker is not None:
            self._broker.settings = self.broker_settings

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> Task[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R]) -> Task[P, R]: ...
    @overload
    def task(
        self, *, bind: Literal[True], **options: Unpack[TaskOptionsKw]
    ) -> BoundTaskDecorator: ...
    @overload
    def task(
        self, *, bind: Literal[False] = False, **options: Unpack[TaskOptionsKw]
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        bind: bool = False,
        **options: Any,
    ) -> Any:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue=..., ...)``.

        Options (Celery's names; every default is the safe one): name, queue, priority (0-9,
        higher first), max_retries (finite; default 3), autoretry_for (default: any Exception),
        dont_autoretry_for, retry_backoff (True = 1 s base, or a base in seconds; False = none),
        retry_backoff_max (600 s), retry_jitter (True), soft_time_limit, time_limit (the app's
        finite defaults), bind (pass a TaskContext first), ignore_result, result_ttl,
        idempotency_ttl, max_stalls; rate_limit ("100/m": this task's own rate, every worker
        together), concurrency (its jobs running at once, every worker together), limits
        (names of `limiter`s it shares), unique (True or "until_finished": a job with the
        same arguments as one holding its key is not enqueued again; docs/limits.md).
        """

        def register(function: Callable[..., Any]) -> Task[..., Any]:
            task_options = build_task_options(self, function, bind=bind, **options)
            if task_options.name in self.tasks:
                raise ConfigurationError(
                    f"a task named {task_options.name!r} is already registered: give one of them "
                    "another name with @app.task(name=...)"
                )
            self._check_limiter_queues(task_options)
            task: Task[..., Any] = Task(self, function, task_options)
            self.tasks[task_options.name] = task
            return task

        return register if fn is None else register(fn)

    def periodic(self, **schedule: Any) -> Callable[[T], T]:
        """Fire a task on a schedule (``errands beat`` runs the schedulers).

        ``@app.periodic(cron="*/5 * * * *", tz="Europe/Prague")`` or
        ``@app.periodic(every=timedelta(seconds=30))``, over ``@app.task``. ``id`` defaults to
        the task name; the other options (args, kwargs, queue, priority, start, end, overlap,
        catchup, catchup_window, jitter, run_limit) are in docs/scheduling.md. A plain function
        is registered as a task first.
        """
        schedule_id: str | None = schedule.pop("id", None)

        def declare(target: T) -> T:
            function = cast("Callable[..., Any]", target)
            task = target if isinstance(target, Task) else self.task(function)
            definition = schedule_def(schedule_id or task.name, task.name, **schedule)
            if definition.id in self.periodic_schedules:
                raise ConfigurationError(
                    f"a schedule with id {definition.id!r} is already declared: give this one "
                    "another id with @app.periodic(id=...)"
                )
            self.periodic_schedules[definition.id] = definition
            return target

        return declare

    def _check_limiter_queues(self, options: TaskOptions) -> None:
        """Register a task's own limiter; refuse a shared one used on another queue."""
        for limiter in options.limiters:
            if limiter.name == options.name:
                self._add_limiter(limiter)
        check_shared_queue(options, [task.options for task in self.tasks.values()])

    def get_task(self, name: str) -> Task[..., Any]:
        """The task registered under `name`; `TaskNotFound` says which names exist."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise TaskNotFound(
                f"no task named {name!r} is registered on this app (registered: {known}): import "
                "the module that defines it before starting the worker, or fix the name"
            ) from None

    # Sending by name -----------------------------------------------------------------------

    def options_for(self, name: str, queue: str | None = None) -> TaskOptions:
        """The options of task `name`: its own if registered here, else this app's defaults."""
        return self._options_for(name, queue)

    def _options_for(self, name: str, queue: str | None) -> TaskOptions:
        task = self.tasks.get(name)
        if task is not None:
            return task.options
        return TaskOptions(
            name=name,
            queue=queue or self.default_queue,
            priority=0,
            retry=RetryPolicy(max_retries=self.max_retries),
            soft_time_limit=self.soft_time_limit,
            time_limit=self.time_limit,
            result_ttl=self.result_ttl,
            idempotency_ttl=self.idempotency_ttl,
            max_stalls=self.max_stalls,
        )

    def send_task(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **call_options: Any,
    ) -> AsyncResult[Any]:
        """Send a job by task name, for producers that do not import the task's code.

        The worker applies the task's own retry policy; call options are those of
        `Task.apply_async`.
        """
        queue, job = self._job_by_name(name, args, kwargs, call_options)
        done = self.send(queue, [job])[0]
        return AsyncResult(self, done.id, queue)

    async def asend_task(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **call_options: Any,
    ) -> AsyncResult[Any]:
        """Async twin of `send_task`."""
        queue, job = self._job_by_name(name, args, kwargs, call_options)
        done = (await self.asend(queue, [job]))[0]
        return AsyncResult(self, done.id, queue)

    def _job_by_name(
        self,
        name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        call_options: Mapping[str, Any],
    ) -> tuple[str, NewJob]:
        options = CallOptions(**call_options)
        task = self.tasks.get(name)
        if task is not None:
            task.check_call(args, kwargs or {})
        return build_job(
            self._options_for(name, options.queue),
            args,
            kwargs or {},
            options,
            self.max_payload_bytes,
        )

    def enqueue_many(self, signatures: Iterable[Signature[R]]) -> list[AsyncResult[R]]:
        """Send many jobs with one broker call per queue (the bulk path: many jobs per round trip).

        Returns the handles in the order of `signatures`.
        """
        # Every signature is checked before any job is sent: a bad argument sends nothing.
        # Building a job (id, record, payload) is most of the client's work, so jobs are built
        # chunk by chunk as they are sent, while Redis runs the chunks sent before.
        by_queue: dict[str, list[tuple[int, Signature[R], CheckedCall]]] = {}
        count = 0
        for sig in signatures:
            task = sig.task
            task.check_call(sig.args, sig.kwargs)
            checked = check_job(
                task.options, sig.args, sig.kwargs, sig.options, self.max_payload_bytes
            )
            items = by_queue.get(checked.queue)
            if items is None:
                items = by_queue[checked.queue] = []
            items.append((count, sig, checked))
            count += 1
        chunks = [
            (queue, items[start : start + _ENQUEUE_CHUNK])
            for queue, items in by_queue.items()
            for start in range(0, len(items), _ENQUEUE_CHUNK)
        ]
        max_bytes = self.max_payload_bytes
        answers = self.send_batches(
            (
                queue,
                [
                    build_job(
                        s.task.options, s.args, s.kwargs, s.options, max_bytes, checked=checked
                    )[1]
                    for _, s, checked in chunk
                ],
            )
            for queue, chunk in chunks
        )
        handles: list[AsyncResult[R] | None] = [None] * count
        refused: BrokerError | None = None
        for (queue, chunk), done in zip(chunks, answers, strict=True):
            if isinstance(done, BrokerError):
                refused = refused or done
                continue
            for (index, sig, _), answer in zip(chunk, done, strict=True):
                ignored = sig.task.options.ignore_result
                handles[index] = AsyncResult(self, answer.id, queue, ignore_result=ignored)
        if refused is not None:
            # Each chunk is all or nothing: say which jobs are in, so a retry can send the rest.
            refused.enqueued = [h for h in handles if h is not None]
            raise refused
        return cast("list[AsyncResult[R]]", handles)  # every index was filled

    # The one way out --------------------------------------------------------------------------

    def send(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Send built jobs to `queue`, through the middleware: every job leaves this way.

        `delay`, `apply_async`, `send_task`, `enqueue_many` and the workflows build their jobs
        and call this (or its twins); so does anything else that sends (a scheduler, an API).
        """
        return self._sender.send(queue, jobs)

    async def asend(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Async twin of `send`."""
        return await self._sender.asend(queue, jobs)

    def send_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued] | BrokerError]:
        """`send` for each (queue, jobs) batch, streamed: each batch's answers or its error."""
        return self._sender.send_batches(batches)

    async def acontinue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Send the next steps of finished jobs (a chain's), which a full Redis still takes."""
        return await self._sender.acontinue(queue, jobs)

    def outgoing(self, queue: str, job: NewJob) -> NewJob:
        """`job` as the middleware leaves it, for one the broker enqueues later (a chord's)."""
        return self._sender.outgoing(queue, job)

    def result(self, job_id: str, queue: str | None = None) -> AsyncResult[Any]:
        """A handle on a job sent earlier (by id and queue)."""
        return AsyncResult(self, job_id, queue or self.default_queue)

    def close(self) -> None:
        """Close the broker's blocking connections."""
        if self._broker is not None:
            self._broker.close()
