"""The operator's commands: ``errands workers``, ``purge``, ``pause``, ``resume`` and ``cancel``.

Each talks to the app's broker through the inspector (what is there) and the Admin protocol
(what to change), with the inspection commands' target options. A command that would change
nothing exits 1 and says why; `errands purge` asks first, or needs ``--yes``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click
import msgspec

from errands.app import App
from errands.broker.types import CancelCode
from errands.broker.urls import redact
from errands.broker.views import JobDetail, WorkerSummary
from errands.cli_output import Listing, confirm_or_refuse, emit_json, iso, iso_json
from errands.cli_target import nothing_found, resolve_target, target, target_app
from errands.states import JobState

__all__ = [
    "cancel",
    "pause",
    "purge",
    "resume",
    "worker_document",
    "workers",
]

#: Jobs one purge call deletes (a few ms of Redis): the command calls again until none are left.
PURGE_BATCH = 250
_FINISHED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _where(app: App) -> str:
    return f"namespace {app.namespace!r} at {redact(app.broker_url)}"


def _queue_names(app: App) -> list[str]:
    names: list[str] = []
    after: str | None = None
    while True:
        page = app.inspector.queues(after=after, limit=100)
        names += [q.name for q in page.items]
        if page.cursor is None:
            return names
        after = page.cursor


def _known_queue(app: App, queue: str) -> None:
    """Refuse a queue nobody used: a typo must not pause or purge a queue of its own."""
    names = _queue_names(app)
    if queue not in names:
        known = ", ".join(names) or "none"
        _fail(f"no queue {queue!r} in {_where(app)} (known queues: {known})")


# errands workers ------------------------------------------------------------------------------


def _live_workers(app: App, queue: str | None) -> Iterator[WorkerSummary]:
    after: str | None = None
    while True:
        if queue is None:
            page = app.inspector.fleet(after=after, limit=100)
        else:
            page = app.inspector.workers(queue, after=after, limit=100)
        yield from page.items
        if page.cursor is None:
            return
        after = page.cursor


def worker_document(worker: WorkerSummary) -> dict[str, Any]:
    """A worker as ``errands workers --json`` and ``GET /v1/workers`` show it."""
    fields = msgspec.structs.asdict(worker)
    fields["seen_at"] = iso_json(worker.seen_at)
    fields["started_at"] = iso_json(worker.started_at)
    return fields


@click.command()
@click.option("--queue", "-q", help="Only the workers serving this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print the workers as a JSON list.")
@target
def workers(queue: str | None, as_json: bool, **target_options: Any) -> None:
    """List the live workers: host, pid, queues, pool, jobs held, started, last seen.

    A worker that stops cleanly leaves the list at once; one that died, once its lease passed.
    """
    chosen = resolve_target(**target_options)
    app = chosen.app
    found = list(_live_workers(app, queue))
    if as_json:
        emit_json({**chosen.header(), "workers": [worker_document(w) for w in found]})
        return
    if not found:
        serving = f" serving queue {queue!r}" if queue else ""
        click.echo(nothing_found(chosen, f"no live worker{serving}"), err=True)
        return
    table = Listing(
        "worker",
        "host",
        "pid",
        "queues",
        "pool",
        "concurrency",
        "held",
        "processed",
        "started",
        "last seen",
    )
    for w in found:
        table.add(
            w.id,
            w.host,
            str(w.pid),
            ",".join(w.queues),
            w.pool,
            str(w.concurrency),
            str(w.held),
            str(w.processed),
            iso(w.started_at),
            iso(w.seen_at),
        )
    table.print()


# errands purge ---------------------------------------------------------------------------------


@click.command()
@click.argument("queue")
@click.option("--delayed", is_flag=True, help="Delete the delayed jobs too (countdowns, retries).")
@click.option("--yes", is_flag=True, help="Do not ask (needed where no one can answer).")
@target
def purge(queue: str, delayed: bool, yes: bool, **target_options: Any) -> None:
    """Delete QUEUE's ready jobs (with --delayed, its delayed ones too) for good.

    Their records go with them and no result is kept. Running jobs are never touched. It
    asks first, showing how many jobs will go; --yes does not ask.
    """
    app = target_app(**target_options)
    _known_queue(app, queue)
    summary = app.inspector.queue(queue)
    what = "ready or delayed" if delayed else "ready"
    total = summary.ready + (summary.delayed if delayed else 0)
    if total == 0:
        hint = f" ({summary.delayed} delayed: add --delayed)" if summary.delayed else ""
        _fail(f"nothing to purge: queue {queue!r} has no {what} job{hint}")
    counted = f"{summary.ready} ready" + (f" and {summary.delayed} delayed" if delayed else "")
    confirm_or_refuse(f"delete {counted} job(s) of queue {queue!r} in {_where(app)} for good", yes)
    deleted = 0
    # Producers may go on sending: stop once as many as were counted are gone.
    while deleted < total:
        batch = app.broker.purge_ready(queue, delayed=delayed, limit=PURGE_BATCH)
        if batch == 0:
            break
        deleted += batch
    left = f"; {summary.active} running job(s) left alone" if summary.active else ""
    click.echo(f"{deleted} {what} job(s) deleted from queue {queue}{left}")


# errands pause / resume -----------------------------------------------------------------------


@click.command()
@click.argument("queue")
@target
def pause(queue: str, **target_options: Any) -> None:
    """Pause QUEUE: workers fetch nothing from it (running jobs finish) until resumed."""
    app = target_app(**target_options)
    _known_queue(app, queue)
    if not app.broker.set_paused(queue, True):
        _fail(f"queue {queue!r} is already paused (`errands resume {queue}` resumes it)")
    click.echo(f"queue {queue} paused: workers fetch nothing from it until `errands resume`")


@click.command()
@click.argument("queue")
@target
def resume(queue: str, **target_options: Any) -> None:
    """Resume QUEUE: workers fetch from it again."""
    app = target_app(**target_options)
    _known_queue(app, queue)
    if not app.broker.set_paused(queue, False):
        _fail(f"queue {queue!r} is not paused")
    click.echo(f"queue {queue} resumed")


# errands cancel --------------------------------------------------------------------------------


def _find_job(app: App, job_id: str, queue: str | None) -> JobDetail:
    names = [queue] if queue else _queue_names(app) or [app.default_queue]
    for name in names:
        job = app.inspector.job(name, job_id)
        if job is not None:
            return job
    _fail(
        f"no job {job_id} in queue(s) {', '.join(names)} of {_where(app)}: it never existed, "
        "or it finished and its result expired"
    )


@click.command()
@click.argument("job_id")
@click.option("--queue", "-q", help="The job's queue (default: search every known queue).")
@target
def cancel(job_id: str, queue: str | None, **target_options: Any) -> None:
    """Cancel a job: a waiting one never runs; a running one is asked to stop."""
    app = target_app(**target_options)
    job = _find_job(app, job_id, queue)
    if job.state in _FINISHED:
        _fail(f"job {job_id} already finished ({job.state}): there is nothing to cancel")
    if job.state == JobState.DEAD:
        _fail(
            f"job {job_id} is dead (it failed for good): there is nothing to cancel; "
            f"`errands dead purge -q {job.queue} {job_id}` deletes it"
        )
    code = app.broker.cancel(job.queue, job_id)
    if code == CancelCode.CANCELLED:
        click.echo(f"job {job_id} cancelled: it will never run")
    elif code == CancelCode.REQUESTED:
        click.echo(
            f"job {job_id} is running: asked to stop; its worker sees it at its next "
            "heartbeat and stops it (a task can check ctx.is_cancelled())"
        )
    elif code == CancelCode.REMOVED_FROM_DEAD:
        click.echo(f"job {job_id} had just died: taken out of the dead set, cancelled")
    else:
        _fail(f"job {job_id} finished before it could be cancelled")
