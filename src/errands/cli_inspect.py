"""The inspection commands: ``errands queues``, ``errands status`` and ``errands dead ...``.

Each reads through the app's inspector (`errands.broker.operator.Inspector`), the read model the
HTTP API and the dashboard share, and renders what it returns; nothing here talks to Redis.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Column, Table

from errands.app import App
from errands.broker.views import DeadFilter, JobDetail, QueueSummary
from errands.loading import load_app
from errands.progress import Progress

__all__ = ["dead", "queues", "status"]

F = TypeVar("F", bound=Callable[..., Any])
# A terminal gets tables its width; a pipe or file gets whole lines (wrapped, grep would miss
# what it looks for), so its width is the widest a row of these tables needs.
console = Console() if Console().is_terminal else Console(width=240)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def target(function: F) -> F:
    """The options that say which app or broker an inspection command talks to."""
    function = click.option(
        "--namespace", default="errands", show_default=True, help="Key namespace of the app."
    )(function)
    function = click.option(
        "--broker-url",
        envvar="ERRANDS_BROKER_URL",
        help="Redis URL (default: $ERRANDS_BROKER_URL, else redis://localhost:6379/0).",
    )(function)
    return click.option("--app", "app_spec", help="Import the app (module:app) for its settings.")(
        function
    )


def target_app(app_spec: str | None, broker_url: str | None, namespace: str) -> App:
    """The app an inspection command reads: imported, or built from a URL and namespace."""
    if app_spec:
        return load_app(app_spec)
    return App(broker_url, namespace=namespace)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(seconds: float | None) -> str:
    """A duration as people read it: 42s, 3m 5s, 2h 10m, 4d 1h."""
    if seconds is None:
        return ""
    whole = int(seconds)
    for unit, size, smaller, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{unit} {whole % size // small_size}{smaller}"
    if whole >= 60:
        return f"{whole // 60}m {whole % 60}s"
    return f"{whole}s"


def _time_option(value: str | None) -> float | None:
    """A time given as an age (``30m``, ``2h``, ``1d``: that long ago) or ISO 8601 (UTC)."""
    if value is None:
        return None
    found = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if found:
        return time.time() - int(found[1]) * _UNITS[found[2]]
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an age (30m, 2h, 1d) nor a date (2026-12-01T09:30)"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def _all_queues(app: App) -> Iterator[QueueSummary]:
    after: str | None = None
    while True:
        page = app.inspector.queues(after=after, limit=100)
        yield from page.items
        if page.cursor is None:
            return
        after = page.cursor


@click.command()
@target
def queues(app_spec: str | None, broker_url: str | None, namespace: str) -> None:
    """Show every queue: its jobs by state, how long the oldest ready one waits, its workers."""
    app = target_app(app_spec, broker_url, namespace)
    table = Table(
        "queue",
        "ready",
        "delayed",
        "active",
        "dead",
        "paused",
        "oldest ready",
        "succeeded",
        "failed",
        "workers",
    )
    for q in _all_queues(app):
        table.add_row(
            q.name,
            str(q.ready),
            str(q.delayed),
            str(q.active),
            str(q.dead),
            "yes" if q.paused else "",
            _age(q.oldest_ready_age_s),
            str(q.stats.get("succeeded", 0)),
            str(q.stats.get("failed", 0)),
            str(q.consumers),
        )
    console.print(table)


def _print_progress(progress: Progress, now: float) -> None:
    """``progress: 40% step 2 of 5 (reported 3s ago)``, then its data, if any."""
    parts = [] if progress.fraction is None else [f"{progress.fraction:.0%}"]
    if progress.message:
        parts.append(progress.message)
    reported = _age(max(now - progress.updated_at.timestamp(), 0.0))
    console.print(f"progress: {' '.join(parts)} (reported {reported} ago)", markup=False)
    if progress.data:
        console.print("progress data:")
        console.print_json(data=progress.data)


def _print_job(job: JobDetail) -> None:
    now = time.time()
    console.print(f"job [bold]{job.id}[/] in queue [bold]{job.queue}[/]: [bold]{job.state}[/]")
    if job.task is not None:
        console.print(f"task: {job.task}", markup=False)
        console.print(f"arguments: {job.args!r} {job.kwargs!r}", markup=False)
    of = f" of {job.max_attempts}" if job.max_attempts is not None else ""
    stalls = f", stalls {job.stalls}" if job.stalls else ""
    console.print(f"attempts: {job.attempts}{of}{stalls}")
    if job.worker is not None:
        console.print(f"worker: {job.worker}", markup=False)
    if job.progress is not None:
        _print_progress(job.progress, now)
    for label, moment in (
        ("enqueued", job.enqueued_at),
        ("due", job.due_at),
        ("lease expires", job.lease_expires_at),
        ("died", job.died_at),
        ("finished", job.finished_at),
    ):
        if moment is not None:
            relative = f"in {_age(moment - now)}" if moment > now else f"{_age(now - moment)} ago"
            console.print(f"{label}: {_when(moment)} UTC ({relative})")
    if job.result is not None:
        console.print("result:")
        console.print_json(data=job.result)
    if job.error is not None:
        console.print(f"error: {job.error.type}: {job.error.message}", markup=False)
        if job.error.traceback:
            console.print(job.error.traceback.rstrip(), markup=False, highlight=False)
    if job.history:
        table = Table("attempt", "ended", "worker", "error", title="earlier attempts")
        for attempt in job.history:
            error = f"{attempt.error.type}: {attempt.error.message}" if attempt.error else ""
            table.add_row(str(attempt.attempt), _when(attempt.ended_at), attempt.worker, error)
        console.print(table)


@click.command()
@click.argument("job_id")
@click.option("--queue", "-q", help="The job's queue (default: search every known queue).")
@click.option("--json", "as_json", is_flag=True, help="Print the job's record as JSON.")
@target
def status(
    job_id: str,
    queue: str | None,
    as_json: bool,
    app_spec: str | None,
    broker_url: str | None,
    namespace: str,
) -> None:
    """Show a job: state, task and arguments, attempts and errors, worker, progress, timings."""
    app = target_app(app_spec, broker_url, namespace)
    names = [queue] if queue else [q.name for q in _all_queues(app)] or [app.default_queue]
    for name in names:
        job = app.inspector.job(name, job_id)
        if job is not None:
            if as_json:
                click.echo(msgspec.json.encode(job).decode())
            else:
                _print_job(job)
            return
    click.echo(
        f"error: no job {job_id} in queue(s) {', '.join(names)}: it never existed, or it "
        "finished and its result expired",
        err=True,
    )
    sys.exit(1)


@click.group()
def dead() -> None:
    """The dead-letter set: jobs that failed for good."""


@dead.command("list")
@click.option("--queue", "-q", default="default", show_default=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--task", help="Only the jobs of this task.")
@click.option("--error", "error_type", help="Only jobs that failed with this error type.")
@click.option("--since", help="Only jobs that died since: an age (2h, 1d) or a date (UTC).")
@click.option("--until", help="Only jobs that died before: an age (2h, 1d) or a date (UTC).")
@click.option("--newest", is_flag=True, help="Newest first (default: oldest first).")
@click.option("--cursor", help="Where to go on: the cursor the previous page printed.")
@target
def dead_list(
    queue: str,
    limit: int,
    task: str | None,
    error_type: str | None,
    since: str | None,
    until: str | None,
    newest: bool,
    cursor: str | None,
    **target_options: Any,
) -> None:
    """List dead jobs with their errors, a page at a time."""
    app = target_app(**target_options)
    where = DeadFilter(task, error_type, _time_option(since), _time_option(until))
    page = app.inspector.dead(queue, where=where, newest_first=newest, cursor=cursor, limit=limit)
    table = Table("died", "task", "attempts", "error")
    table.columns.insert(0, Column("job", no_wrap=True, min_width=32))
    for job in page.items:
        error = f"{job.error.type}: {job.error.message}" if job.error else ""
        table.add_row(job.id, _when(job.died_at), job.task, str(job.attempts), error)
    console.print(table)
    if page.cursor is not None:
        click.echo(f"more: add --cursor {page.cursor} for the next page")


def _dead_selection(function: F) -> F:
    """Which dead jobs a command acts on: the given ids, else the oldest --limit."""
    function = target(function)
    function = click.option(
        "--limit", default=100, show_default=True, help="With no ids: the oldest N."
    )(function)
    function = click.option("--queue", "-q", default="default", show_default=True)(function)
    return click.argument("job_ids", nargs=-1)(function)


@dead.command("retry")
@_dead_selection
def dead_retry(job_ids: tuple[str, ...], queue: str, limit: int, **target_options: Any) -> None:
    """Move dead jobs (the given ones, else the oldest --limit) back to ready."""
    moved = target_app(**target_options).broker.redrive(queue, job_ids, limit)
    click.echo(f"{len(moved)} job(s) back in queue {queue}")


@dead.command("purge")
@_dead_selection
def dead_purge(job_ids: tuple[str, ...], queue: str, limit: int, **target_options: Any) -> None:
    """Delete dead jobs (the given ones, else the oldest --limit) for good."""
    deleted = target_app(**target_options).broker.purge(queue, job_ids, limit)
    click.echo(f"{deleted} dead job(s) deleted from queue {queue}")
