"""The inspection commands ``errands queues`` and ``errands status``.

``errands dead ...`` lives in `errands.cli_dead`.
Each reads through the app's inspector (`errands.broker.operator.Inspector`), the read model the
HTTP API and the dashboard share, and renders what it returns; nothing here talks to Redis.
Which app they read is `errands.cli_target`; how they print, `errands.cli_output`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import click
import msgspec

from errands.app import App
from errands.broker.views import JobDetail, QueueSummary
from errands.cli_dead import dead
from errands.cli_output import (
    Listing,
    console,
    emit_json,
    human_duration,
    iso,
    iso_json,
    short_call,
)
from errands.cli_target import nothing_found, resolve_target, target, target_app
from errands.progress import Progress
from errands.result import ErrorInfo
from errands.states import JobState

__all__ = [
    "all_queues",
    "console",
    "dead",
    "job_document",
    "queue_document",
    "queues",
    "status",
    "target",
    "target_app",
]

# The times of a job, in the order a report shows them.
_MOMENTS = ("enqueued_at", "started_at", "due_at", "lease_expires_at", "died_at", "finished_at")


def all_queues(app: App) -> Iterator[QueueSummary]:
    """Every queue of `app`, by name, a page at a time."""
    after: str | None = None
    while True:
        page = app.inspector.queues(after=after, limit=100)
        yield from page.items
        if page.cursor is None:
            return
        after = page.cursor


def queue_document(q: QueueSummary) -> dict[str, Any]:
    """A queue as ``errands queues --json`` and ``GET /v1/queues`` show it."""
    return msgspec.to_builtins(q)  # type: ignore[no-any-return]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@target
def queues(
    as_json: bool, app_spec: str | None, broker_url: str | None, namespace: str | None
) -> None:
    """Show every queue: its jobs by state, how long the oldest ready one waits, its workers."""
    chosen = resolve_target(app_spec, broker_url, namespace)
    found = list(all_queues(chosen.app))
    if as_json:
        emit_json({**chosen.header(), "queues": [queue_document(q) for q in found]})
    if not found:
        click.echo(nothing_found(chosen, "no queues"), err=True)
        return
    if as_json:
        return
    listing = Listing(
        "queue", "ready", "delayed", "active", "dead", "paused", "oldest ready", "succeeded",
        "failed", "workers",
    )  # fmt: skip
    for q in found:
        listing.add(
            q.name,
            str(q.ready),
            str(q.delayed),
            str(q.active),
            str(q.dead),
            "yes" if q.paused else "",
            human_duration(q.oldest_ready_age_s),
            str(q.stats.get("succeeded", 0)),
            str(q.stats.get("failed", 0)),
            str(q.consumers),
        )
    listing.print()


def _durations(job: JobDetail, now: float) -> tuple[float | None, float | None]:
    """(wait, run) in seconds: enqueue to the first start, and the latest attempt's run.

    The wait is known only while the first attempt is the latest (a retried job's start is its
    latest attempt's); a running attempt's run is as long as it has run so far.
    """
    wait = None
    if job.started_at is not None and job.enqueued_at is not None and job.attempts <= 1:
        wait = max(job.started_at - job.enqueued_at, 0.0)
    run = None
    if job.started_at is not None:
        end = now if job.state is JobState.ACTIVE else (job.died_at or job.finished_at)
        if end is not None and end >= job.started_at:
            run = end - job.started_at
    return wait, run


def job_document(job: JobDetail, now: float | None = None) -> dict[str, Any]:
    """A job as ``errands status --json`` prints it: times as ISO 8601 (UTC), and durations.

    The durations are ``wait_s`` and ``run_s`` in seconds (see `_durations`).
    """
    document: dict[str, Any] = msgspec.to_builtins(job)
    for name in _MOMENTS:
        document[name] = iso_json(getattr(job, name))
    document["history"] = [
        {**msgspec.to_builtins(a), "ended_at": iso_json(a.ended_at)} for a in job.history
    ]
    if job.progress is not None:
        document["progress"]["updated_at"] = iso_json(job.progress.updated_at)
    document["wait_s"], document["run_s"] = _durations(job, time.time() if now is None else now)
    return document


def _line(label: str, text: str) -> None:
    console.print(f"{label}: {text}", markup=False, highlight=False, soft_wrap=True)


def _relative(moment: float, now: float) -> str:
    return (
        f"in {human_duration(moment - now)}"
        if moment > now
        else f"{human_duration(now - moment)} ago"
    )


def _progress_text(progress: Progress, now: float) -> str:
    """``40% step 2 of 5 (reported 3s ago)``."""
    parts = [] if progress.fraction is None else [f"{progress.fraction:.0%}"]
    if progress.message:
        parts.append(progress.message)
    reported = human_duration(max(now - progress.updated_at.timestamp(), 0.0))
    return f"{' '.join(parts)} (reported {reported} ago)"


def _error_text(error: ErrorInfo | None) -> str:
    return f"{error.type}: {error.message}" if error else "(no error recorded)"


def _print_attempts(job: JobDetail) -> None:
    """Each attempt with its error, then the last traceback as it was printed."""
    of = f" of {job.max_attempts}" if job.max_attempts is not None else ""
    stalls = f", stalls {job.stalls}" if job.stalls else ""
    _line("attempts", f"{job.attempts}{of}{stalls}")
    for attempt in job.history:
        where = f" on {attempt.worker}" if attempt.worker else ""
        console.print(
            f"  {attempt.attempt}. {iso(attempt.ended_at)}{where}: {_error_text(attempt.error)}",
            markup=False,
            soft_wrap=True,
        )
    last = job.error
    if last is not None:
        ended = job.died_at or job.finished_at
        console.print(
            f"  {job.attempts}. {iso(ended)}: {_error_text(last)}", markup=False, soft_wrap=True
        )
    elif job.history:
        last = job.history[-1].error
    if last is not None and last.traceback:
        console.print("traceback of the last failed attempt:", markup=False)
        # Written as is: a traceback is read line by line, never re-wrapped or escaped.
        click.echo(last.traceback.rstrip())


def _print_job(job: JobDetail) -> None:
    now = time.time()
    console.print(f"job {job.id} in queue {job.queue}: {job.state}", markup=False, soft_wrap=True)
    if job.task is not None:
        _line("task", job.task)
        _line("arguments", short_call(job.args, job.kwargs))
    if job.worker is not None:
        _line("worker", job.worker)
    wait, run = _durations(job, now)
    for name in _MOMENTS:
        moment = getattr(job, name)
        if moment is None or (name == "finished_at" and job.died_at is not None):
            continue  # a dead job finished when it died
        label = name.removesuffix("_at").replace("_", " ")
        extra = _relative(moment, now)
        if name == "started_at" and wait is not None:
            extra += f", waited {human_duration(wait)}"
        if name in ("died_at", "finished_at") and run is not None:
            extra += f", ran {human_duration(run)}"
        _line(label, f"{iso(moment)} ({extra})")
    if job.state is JobState.ACTIVE and run is not None:
        _line("running", f"for {human_duration(run)}")
    if job.progress is not None:
        _line("progress", _progress_text(job.progress, now))
        if job.progress.data:
            console.print("progress data:")
            console.print_json(data=job.progress.data)
    _print_attempts(job)
    if job.result is not None:
        console.print("result:")
        console.print_json(data=job.result)


@click.command()
@click.argument("job_id")
@click.option("--queue", "-q", help="The job's queue (default: search every known queue).")
@click.option("--json", "as_json", is_flag=True, help="Print the job as one JSON document.")
@target
def status(
    job_id: str,
    queue: str | None,
    as_json: bool,
    app_spec: str | None,
    broker_url: str | None,
    namespace: str | None,
) -> None:
    """Show a job: task and arguments, state, attempts and errors, worker, timings, progress."""
    chosen = resolve_target(app_spec, broker_url, namespace)
    app = chosen.app
    names = [queue] if queue else [q.name for q in all_queues(app)] or [app.default_queue]
    job = app.inspector.find_job(names, job_id)
    if job is not None:
        if as_json:
            emit_json(job_document(job))
        else:
            _print_job(job)
        return
    searched = (
        f"no job {job_id} in queue(s) {', '.join(names)} (it never existed, or it finished "
        "and its result expired)"
    )
    click.echo(f"error: {nothing_found(chosen, searched)}", err=True)
    sys.exit(1)
