"""Middleware: typed hooks around sending and running jobs, the one seam for policies.

Give them to the app, ``App(..., middleware=[Tracing(), Audit()])``; they run in that order
(the ``after_*`` hooks too). Subclass `Middleware` and override the hooks you need; every hook
is a no-op by default. Each runs in a given process:

- `before_enqueue`, `after_enqueue`: the process that sends the job, before it reaches the
  broker and once the broker answered. That is the producer for `delay`, `apply_async`,
  `send_task`, `enqueue_many`, groups, chains and chords; the worker's supervisor for a chain's
  next step. A chord's callback goes through `before_enqueue` when the chord starts (Redis
  enqueues it later, when its last member reports: no `after_enqueue`).
- `before_execute`, `after_execute`: the process that runs the task: a child of the process
  pool; the worker itself with ``--pool solo`` or ``async``; the test's process with
  `errands.testing.run_jobs`.
- `follow_up_headers`: the process that runs the task, while it still runs: headers for the
  chain's next step it leads to, which the supervisor sends later (through `before_enqueue`).
- `on_dead`, `on_worker_start`, `on_worker_stop`: the worker's supervisor: when a call it made
  sent a job to the dead set (an ack, a reap of a stalled job, a record buried), when it starts
  serving, and when it has stopped.
- `bind`: once, when the app is built with this middleware, in every process that builds it.

A hook that raises is logged and skipped: it never loses a job nor runs one twice. The one
exception is `before_enqueue` raising an `ErrandsError`: that refuses the send, and the caller
gets the error (nothing of that call is sent).

A middleware may read task options of its own: it names them in `task_options`, and a task
passes them in ``@app.task(extras={...})``; a task giving an option no middleware of the app
accepts is refused when it is registered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

from errands.errors import ErrandsError
from errands.message import check_json
from errands.result import ErrorInfo

if TYPE_CHECKING:
    from errands.app import App
    from errands.context import TaskContext

__all__ = [
    "Execution",
    "ExecutionState",
    "Middleware",
    "Middlewares",
    "Outgoing",
    "WorkerInfo",
    "accepting",
]

ExecutionState = Literal["succeeded", "retrying", "cancelled", "failed"]

log = logging.getLogger("errands.middleware")


class Outgoing(msgspec.Struct, frozen=True):
    """A job about to be sent, as middleware sees it; `before_enqueue` may return a changed one.

    Attributes:
        id: the job id.
        task: the task name.
        queue: the queue it goes to.
        args: its positional arguments (JSON values).
        kwargs: its keyword arguments (JSON values).
        priority: 0-9, higher first.
        delay_s: seconds before it may run (0: now).
        idempotency_key: its idempotency key, if any.
        headers: JSON values that travel with the job to the task (`TaskContext.headers`), for
            what middleware needs there: a trace context, a tenant, a request id.
    """

    id: str
    task: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int = 0
    delay_s: float = 0.0
    idempotency_key: str | None = None
    headers: dict[str, Any] = {}


class Execution(msgspec.Struct, frozen=True):
    """How one run of a job ended, as the process that ran it sees it.

    Attributes:
        state: "succeeded"; "retrying" (it failed and will run again); "cancelled" (it was
            asked to stop and did not succeed); "failed" (for good, as far as this process
            knows: Redis counts the attempts, see `Middleware.on_dead`).
        duration_s: wall-clock seconds the run took.
        error: what it failed with (None when it succeeded).
        exception: the exception itself, with its traceback, for hooks that want its frames
            (an error reporter); None when it succeeded, or when no exception of the task's
            is at hand (a result that is not JSON). A live object, never a JSON value: a hook
            that encodes how a run ended encodes the other fields.
    """

    state: ExecutionState
    duration_s: float
    error: ErrorInfo | None = None
    exception: BaseException | None = None


class WorkerInfo(msgspec.Struct, frozen=True):
    """A worker, as `on_worker_start` and `on_worker_stop` see it."""

    id: str
    queues: list[str]
    pool: str
    concurrency: int


class Middleware:
    """Hooks around sending and running jobs; every one is a no-op here.

    Attributes:
        task_options: the names of the task options (``@app.task(extras={...})``) this
            middleware reads, from `Task.options.extras`.
    """

    task_options: ClassVar[frozenset[str]] = frozenset()

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        """Return the job to send (changed or not); raise an `ErrandsError` to refuse it."""
        return job

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        """The broker took `job` (`created`), or found it a duplicate of a known one."""

    def before_execute(self, ctx: TaskContext) -> None:
        """The job of `ctx` is about to run, in this process."""

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        """The job of `ctx` ran, in this process, and ended as `execution` says."""

    def follow_up_headers(self, ctx: TaskContext) -> dict[str, Any]:
        """Headers for the chain's next step of `ctx`'s job, taken here while the job runs.

        The step is built in the process that ran the job and sent by the supervisor, whose
        `before_enqueue` sees these in `Outgoing.headers`: what only the running job knows
        (its trace context) reaches the step this way. The dicts of all middleware are merged
        in order.
        """
        return {}

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        """A job went to the dead set; `error` is why (None when its outcome says nothing)."""

    def on_worker_start(self, worker: WorkerInfo) -> None:
        """A worker starts serving its queues."""

    def on_worker_stop(self, worker: WorkerInfo) -> None:
        """A worker stopped: every job it held is acknowledged or given back."""

    def bind(self, app: App) -> None:
        """The app was built with this middleware (for hooks that read it: its inspector)."""


class Middlewares:
    """The app's middleware, run in order, a failing hook logged and skipped.

    Args:
        middleware: the middleware instances, in the order their hooks run.
    """

    __slots__ = (
        "_after_execute",
        "_before_execute",
        "_follow_up_headers",
        "all",
        "executing",
        "sending",
    )

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.all = tuple(middleware)
        #: Some middleware looks at sends: jobs are shown to it (a cost only then).
        self.sending = bool(_overriding(self.all, "before_enqueue", "after_enqueue"))
        # The execute hooks run per job in the child: only the middleware that define them are
        # called, through bound methods found once.
        self._before_execute = _overriding(self.all, "before_execute")
        self._after_execute = _overriding(self.all, "after_execute")
        #: Some middleware looks at runs: the execute hooks are called (a cost only then).
        self.executing = bool(self._before_execute or self._after_execute)
        self._follow_up_headers = _overriding(self.all, "follow_up_headers")

    def __bool__(self) -> bool:
        return bool(self.all)

    def options(self) -> frozenset[str]:
        """Every task option some middleware of the app reads."""
        return frozenset(name for m in self.all for name in m.task_options)

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        """Run every `before_enqueue` in turn; an `ErrandsError` refuses the job."""
        for middleware in self.all:
            try:
                job = middleware.before_enqueue(job)
            except ErrandsError:
                raise
            except Exception:  # noqa: BLE001 - a hook's bug never loses or stops a job
                _failed(middleware, "before_enqueue")
        return job

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        """Run every `after_enqueue`."""
        self._each("after_enqueue", lambda m: m.after_enqueue(job, created))

    def before_execute(self, ctx: TaskContext) -> None:
        """Run every `before_execute`."""
        for middleware, hook in self._before_execute:
            try:
                hook(ctx)
            except Exception:  # noqa: BLE001 - a hook's bug never loses or stops a job
                _failed(middleware, "before_execute")

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        """Run every `after_execute`."""
        for middleware, hook in self._after_execute:
            try:
                hook(ctx, execution)
            except Exception:  # noqa: BLE001 - a hook's bug never loses or stops a job
                _failed(middleware, "after_execute")

    def follow_up_headers(self, ctx: TaskContext) -> dict[str, Any] | None:
        """Every `follow_up_headers` merged in order; None when no middleware gives any."""
        merged: dict[str, Any] = {}
        for middleware, hook in self._follow_up_headers:
            try:
                headers = hook(ctx)
                check_json(headers, "follow_up_headers")
                merged.update(headers)
            except Exception:  # noqa: BLE001 - a hook's bug never loses or stops a job
                _failed(middleware, "follow_up_headers")
        return merged or None

    def bind(self, app: App) -> None:
        """Run every `bind`."""
        self._each("bind", lambda m: m.bind(app))

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        """Run every `on_dead`."""
        self._each("on_dead", lambda m: m.on_dead(queue, job_id, error))

    def on_worker_start(self, worker: WorkerInfo) -> None:
        """Run every `on_worker_start`."""
        self._each("on_worker_start", lambda m: m.on_worker_start(worker))

    def on_worker_stop(self, worker: WorkerInfo) -> None:
        """Run every `on_worker_stop`."""
        self._each("on_worker_stop", lambda m: m.on_worker_stop(worker))

    def _each(self, hook: str, call: Callable[[Middleware], None]) -> None:
        for middleware in self.all:
            try:
                call(middleware)
            except Exception:  # noqa: BLE001 - a hook's bug never loses or stops a job
                _failed(middleware, hook)


def _overriding(
    middleware: Sequence[Middleware], *hooks: str
) -> tuple[tuple[Middleware, Any], ...]:
    """(middleware, its bound hook) for each of `hooks` a middleware defines, in order."""
    return tuple(
        (m, getattr(m, hook))
        for m in middleware
        for hook in hooks
        if getattr(type(m), hook) is not getattr(Middleware, hook)
    )


def _failed(middleware: Middleware, hook: str) -> None:
    log.exception(
        "middleware %s failed in %s; the job goes on without it",
        type(middleware).__name__,
        hook,
    )


def accepting(option: str) -> list[str]:
    """The middleware classes defined so far that read task option `option`, by name."""
    found: list[str] = []
    pending: list[type[Middleware]] = [Middleware]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if option in kind.task_options:
            found.append(f"{kind.__module__}.{kind.__qualname__}")
    return sorted(set(found))
