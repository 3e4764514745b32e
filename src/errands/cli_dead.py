"""``errands dead list|retry|purge``: the dead-letter set, read and changed.

``purge`` deletes for good, so it asks first (on a terminal) or needs ``--yes``; off a terminal
without ``--yes`` it refuses (exit 2). ``retry`` and ``purge`` that change nothing, or not all
they were asked to, exit 1 and say why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from errands.broker.views import DeadFilter, DeadJob
from errands.cli_output import (
    Listing,
    confirm_or_refuse,
    emit_json,
    iso,
    iso_json,
    time_option,
)
from errands.cli_target import Target, nothing_found, resolve_target, target
from errands.states import JobState

__all__ = [
    "dead",
    "dead_document",
]

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def dead() -> None:
    """The dead-letter set: jobs that failed for good."""


def dead_document(job: DeadJob) -> dict[str, Any]:
    """A dead job as ``errands dead list --json`` and ``GET /v1/dead`` show it."""
    return {
        "id": job.id,
        "queue": job.queue,
        "task": job.task,
        "died_at": iso_json(job.died_at),
        "attempts": job.attempts,
        "error": None
        if job.error is None
        else {"type": job.error.type, "message": job.error.message},
    }


@dead.command("list")
@click.option("--queue", "-q", help="The queue (default: the app's default queue).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--task", help="Only the jobs of this task.")
@click.option("--error", "error_type", help="Only jobs that failed with this error type.")
@click.option("--since", help="Only jobs that died since: an age (2h, 1d) or a date (UTC).")
@click.option("--until", help="Only jobs that died before: an age (2h, 1d) or a date (UTC).")
@click.option("--newest", is_flag=True, help="Newest first (default: oldest first).")
@click.option("--cursor", help="Where to go on: the cursor the previous page printed.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as one JSON document.")
@target
def dead_list(
    queue: str | None,
    limit: int,
    task: str | None,
    error_type: str | None,
    since: str | None,
    until: str | None,
    newest: bool,
    cursor: str | None,
    as_json: bool,
    **target_options: Any,
) -> None:
    """List dead jobs with their errors, a page at a time."""
    chosen = resolve_target(**target_options)
    name = queue or chosen.app.default_queue
    where = DeadFilter(task, error_type, time_option(since), time_option(until))
    page = chosen.app.inspector.dead(
        name, where=where, newest_first=newest, cursor=cursor, limit=limit
    )
    if as_json:
        emit_json(
            {
                **chosen.header(),
                "queue": name,
                "jobs": [dead_document(j) for j in page.items],
                "cursor": page.cursor,
            }
        )
    if not page.items and page.cursor is None:
        filtered = " matching the filters" if task or error_type or since or until else ""
        click.echo(nothing_found(chosen, f"no dead jobs{filtered} in queue {name}"), err=True)
        return
    if as_json:
        return
    listing = Listing("job", "died", "task", "attempts", "error", wrap=["error"])
    for job in page.items:
        error = f"{job.error.type}: {job.error.message}" if job.error else ""
        listing.add(job.id, iso(job.died_at), job.task, str(job.attempts), error)
    listing.print()
    if page.cursor is not None:
        click.echo(f"more: add --cursor {page.cursor} for the next page")


def _dead_selection(function: F) -> F:
    """Which dead jobs a command acts on: the given ids, else the oldest --limit."""
    function = target(function)
    function = click.option(
        "--limit", default=100, show_default=True, help="With no ids: the oldest N."
    )(function)
    function = click.option("--queue", "-q", help="The queue (default: the app's default queue).")(
        function
    )
    return click.argument("job_ids", nargs=-1)(function)


def _not_dead(chosen: Target, queue: str, job_ids: tuple[str, ...]) -> list[str]:
    """Those of `job_ids` that are not in the dead set of `queue` now."""
    missing = []
    for job_id in job_ids:
        job = chosen.app.inspector.job(queue, job_id)
        if job is None or job.state is not JobState.DEAD:
            missing.append(job_id)
    return missing


def _fail_unchanged(chosen: Target, queue: str, missing: list[str], done: str) -> None:
    """Exit 1 naming the ids that were not in the dead set (`done`: what was changed)."""
    shown = ", ".join(missing[:10]) + (
        f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    )
    click.echo(
        f"error: {done}; not in the dead set of queue {queue} in {chosen.where()}: {shown}",
        err=True,
    )
    sys.exit(1)


@dead.command("retry")
@_dead_selection
def dead_retry(
    job_ids: tuple[str, ...], queue: str | None, limit: int, **target_options: Any
) -> None:
    """Move dead jobs (the given ones, else the oldest --limit) back to ready.

    Exits 1 when nothing moved, or when a given id was not in the dead set.
    """
    chosen = resolve_target(**target_options)
    name = queue or chosen.app.default_queue
    moved = chosen.app.broker.redrive(name, job_ids, limit)
    if job_ids:
        missing = [i for i in job_ids if i not in set(moved)]
        if missing:
            _fail_unchanged(chosen, name, missing, f"{len(moved)} job(s) back in queue {name}")
    elif not moved:
        click.echo(f"error: {nothing_found(chosen, f'no dead jobs in queue {name}')}", err=True)
        sys.exit(1)
    click.echo(f"{len(moved)} job(s) back in queue {name}")


@dead.command("purge")
@_dead_selection
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed off a terminal).")
def dead_purge(
    job_ids: tuple[str, ...], queue: str | None, limit: int, yes: bool, **target_options: Any
) -> None:
    """Delete dead jobs (the given ones, else the oldest --limit) for good; asks first.

    Exits 1 when nothing was deleted, or when a given id was not in the dead set.
    """
    chosen = resolve_target(**target_options)
    name = queue or chosen.app.default_queue
    missing = _not_dead(chosen, name, job_ids)
    if job_ids and len(missing) == len(job_ids):
        _fail_unchanged(chosen, name, missing, "nothing deleted")
    count = chosen.app.inspector.queue(name).dead
    if not job_ids and count == 0:
        click.echo(f"error: {nothing_found(chosen, f'no dead jobs in queue {name}')}", err=True)
        sys.exit(1)
    what = (
        f"{len(job_ids) - len(missing)} given"
        if job_ids
        else f"the oldest {min(limit, count)} of {count}"
    )
    confirm_or_refuse(f"delete {what} dead job(s) of queue {name} for good", yes)
    deleted = chosen.app.broker.purge(name, job_ids, limit)
    if missing:
        _fail_unchanged(chosen, name, missing, f"{deleted} dead job(s) deleted")
    click.echo(f"{deleted} dead job(s) deleted from queue {name}")
