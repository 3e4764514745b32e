"""`SentryReports`: an event in Sentry when a job fails for good, from the process that saw it.

Add it to the app, ``App(..., middleware=[SentryReports(dsn=...)])``. Who reports what:

- the process that ran the job (a child of the process pool, the worker itself with ``--pool
  solo`` or ``async``), in `after_execute`, when the run ended "failed" (and, with
  ``every_attempt=True``, "retrying" too): the exception with its frames;
- the worker's supervisor, in `on_dead`, for the deaths no run saw (`errands.observe.deaths`):
  a hard-limit kill, a lost child, a job stalled too often, a record that cannot be read, a task
  this worker does not know. A job is reported by one of the two, never both.

Each event is tagged ``errands.task``, ``errands.queue``, ``errands.job_id`` and
``errands.attempt``, grouped by task and error type (its fingerprint), and carries no
argument of the job unless ``include_arguments=True``: the frames' local variables (where a
task's arguments are) are dropped from it.

Sentry is set up in each process that reports: with a `dsn`, on the first report of that
process (a child of the pool is a process of its own); without one, the app's module calls
``sentry_sdk.init`` at import, which every process of a worker runs.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from errands.middleware import Execution, Middleware
from errands.observe.deaths import read_dead_job, unseen_by_a_run
from errands.observe.extras import require
from errands.result import ErrorInfo

if TYPE_CHECKING:
    from errands.app import App
    from errands.context import TaskContext

__all__ = ["SentryReports"]

log = logging.getLogger("errands.observe")

# The worker's lines about failed jobs must not make Sentry events of their own (Sentry's logging
# integration would, at ERROR): SentryReports makes the one event per job. Patterns (fnmatch).
_OWN_LOGGERS = ("errands.worker", "errands.worker.*", "errands.observe")
# A run that asked to run again, with no error of its own: not a failed attempt.
_NOT_FAILURES = frozenset({"errands.errors.RateLimited", "errands.errors.Retry"})


class SentryReports(Middleware):
    """Sentry events for jobs that fail for good (or, by a switch, on every failed attempt).

    Args:
        dsn: the Sentry DSN; each process that reports sets Sentry up with it on its first
            report, unless Sentry is set up there already. None: the app sets Sentry up itself
            (``sentry_sdk.init`` in the app's module, so that every process of a worker runs
            it).
        every_attempt: report every failed attempt, retried ones too, not only the last.
        include_arguments: send the job's arguments (the frames' local variables, and the
            dead job's recorded arguments); off by default, as they may hold personal data.
        **init_options: more options for ``sentry_sdk.init`` when a `dsn` is given
            (``environment``, ``release``, ``shutdown_timeout``...).

    Raises:
        ConfigurationError: sentry-sdk is not installed (``pip install 'errands[sentry]'``).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        every_attempt: bool = False,
        include_arguments: bool = False,
        **init_options: Any,
    ) -> None:
        require("sentry_sdk", "SentryReports", "sentry")
        from sentry_sdk.integrations.logging import ignore_logger  # noqa: PLC0415

        for name in _OWN_LOGGERS:
            ignore_logger(name)
        self.dsn = dsn
        self.every_attempt = every_attempt
        self.include_arguments = include_arguments
        self._init_options = init_options
        self._ready_in: int | None = None  # the pid of the process where Sentry was set up
        self._app: App | None = None

    def bind(self, app: App) -> None:
        """Keep the app, to read a dead job's record in `on_dead`."""
        self._app = app

    # The hooks ------------------------------------------------------------------------------------

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        """Report a run that failed for good (or any failed one, with `every_attempt`)."""
        if execution.state != "failed" and not (
            self.every_attempt and execution.state == "retrying"
        ):
            return
        error = execution.error
        if error is None or (execution.state == "retrying" and error.type in _NOT_FAILURES):
            return
        tags = _tags(ctx.task, ctx.queue, ctx.id, ctx.attempt)
        context: dict[str, Any] = {
            "task": ctx.task,
            "queue": ctx.queue,
            "job_id": ctx.id,
            "attempt": ctx.attempt,
            "max_retries": ctx.max_retries,
            "state": execution.state,
            "duration_s": round(execution.duration_s, 6),
        }
        if ctx.scheduled_for is not None:
            context["scheduled_for"] = ctx.scheduled_for.isoformat()
        self._report(ctx.task, error, execution.exception, tags, context)

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        """Report a death no run saw (a hard-limit kill, a lost child...), in the supervisor."""
        if not unseen_by_a_run(error):
            return  # the process that ran it reported it
        detail = read_dead_job(self._app, queue, job_id)
        task = (detail.task if detail else None) or "unknown"
        attempt = detail.attempts if detail else 0
        why = error or ErrorInfo(
            "UnknownError", "the job went to the dead set; its outcome says no more"
        )
        context: dict[str, Any] = {
            "task": task,
            "queue": queue,
            "job_id": job_id,
            "attempt": attempt,
            "state": "dead",
        }
        if detail is not None and self.include_arguments:
            context["args"] = detail.args
            context["kwargs"] = detail.kwargs
        if why.traceback:
            context["traceback"] = why.traceback
        self._report(task, why, None, _tags(task, queue, job_id, attempt), context)

    # Reporting ------------------------------------------------------------------------------------

    def _ready(self) -> None:
        """Set Sentry up in this process, once, when a DSN was given and nobody else did."""
        pid = os.getpid()
        if self._ready_in == pid:
            return
        self._ready_in = pid
        import sentry_sdk  # noqa: PLC0415 - an optional extra

        client = sentry_sdk.get_client()
        if self.dsn is None or (client.is_active() and client.transport is not None):
            return  # the app set up a Sentry that sends: its own options stand
        from sentry_sdk.integrations.atexit import AtexitIntegration  # noqa: PLC0415

        options: dict[str, Any] = {
            # Only what these reports need: no patching of the libraries a task uses, no
            # breadcrumbs of its logs (they may hold its arguments); pending events are sent at
            # exit.
            "default_integrations": False,
            "auto_enabling_integrations": False,
            "integrations": [AtexitIntegration()],
            "include_local_variables": self.include_arguments,
            **self._init_options,
        }
        sentry_sdk.init(self.dsn, **options)

    def _report(
        self,
        task: str,
        error: ErrorInfo,
        exception: BaseException | None,
        tags: dict[str, str],
        context: dict[str, Any],
    ) -> None:
        self._ready()
        import sentry_sdk  # noqa: PLC0415 - an optional extra

        client = sentry_sdk.get_client()
        if not client.is_active():
            return
        mechanism = {"type": "errands", "handled": False}
        hint: dict[str, Any] = {}
        if exception is not None:
            from sentry_sdk.utils import event_from_exception  # noqa: PLC0415

            event, hint = event_from_exception(exception, client.options, mechanism)
        else:
            module, _, name = error.type.rpartition(".")
            value: dict[str, Any] = {"type": name, "value": error.message, "mechanism": mechanism}
            if module:
                value["module"] = module
            event = {"exception": {"values": [value]}}
        if not self.include_arguments:
            _drop_variables(event)
        event["level"] = "error"
        event["tags"] = {**event.get("tags", {}), **tags}
        event["fingerprint"] = ["errands", task, error.type]
        event["transaction"] = task
        event["contexts"] = {
            **event.get("contexts", {}),
            "errands": {**context, "pid": os.getpid()},
        }
        sentry_sdk.capture_event(event, hint=hint)


def _tags(task: str, queue: str, job_id: str, attempt: int) -> dict[str, str]:
    return {
        "errands.task": task,
        "errands.queue": queue,
        "errands.job_id": job_id,
        "errands.attempt": str(attempt),
    }


def _drop_variables(event: Any) -> None:
    """Remove the frames' local variables: a task's arguments are among them."""
    for value in event.get("exception", {}).get("values", []):
        for frame in (value.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
