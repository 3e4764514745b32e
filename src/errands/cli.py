"""The `errands` command: thin; it parses arguments and calls the modules that do the work."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Column, Table

from errands.app import App
from errands.check.cli import check_command
from errands.errors import ErrandsError
from errands.loading import load_app
from errands.observe.logging import configure_logging

__all__ = ["main"]

if TYPE_CHECKING:
    from errands.worker import Supervisor

F = TypeVar("F", bound=Callable[..., Any])
console = Console()


class _Group(click.Group):
    """Turns errands errors into one clear line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ErrandsError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="errands")
def main() -> None:
    """errands: a task queue whose defaults are the lessons learned the hard way."""


def _target(function: F) -> F:
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


def _app(app_spec: str | None, broker_url: str | None, namespace: str) -> App:
    if app_spec:
        return load_app(app_spec)
    return App(broker_url, namespace=namespace)


# The worker ------------------------------------------------------------------------------------


@main.command()
@click.argument("app_spec", metavar="APP")
@click.option("-Q", "--queues", default=None, help="high,default (strict) or high:3,default:1.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Children (default: CPUs).")
@click.option(
    "--pool",
    type=click.Choice(["process", "solo", "async"]),
    default="process",
    show_default=True,
    help="process: children run tasks, hard limits enforced; solo: one job at a time in this "
    "process (debugging); async: async tasks on this process's loop (soft limits only).",
)
@click.option("--prefetch", type=click.IntRange(min=0), help="Jobs queued per child (adaptive).")
@click.option("--grace-period", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option(
    "--lease", type=click.FloatRange(min=1), help="Lease in seconds (default: the app's, 30)."
)
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
def worker(
    app_spec: str,
    queues: str | None,
    concurrency: int | None,
    pool: Literal["process", "solo", "async"],
    prefetch: int | None,
    grace_period: float,
    lease: float | None,
    log_level: str,
    log_format: Literal["console", "json"],
) -> None:
    """Run a worker for APP (module:app) until SIGTERM or Ctrl-C.

    The first signal stops fetching and lets running jobs finish within the grace period, then
    gives the rest back; a second signal gives everything back at once.
    """
    from errands.worker import Supervisor, WorkerConfig, parse_queues  # noqa: PLC0415

    configure_logging(log_level, log_format)
    app = load_app(app_spec)
    config = WorkerConfig(
        queues=parse_queues(queues or app.default_queue),
        concurrency=concurrency or os.cpu_count() or 1,
        pool=pool,
        prefetch=prefetch,
        grace_period_s=grace_period,
        lease_s=lease or app.lease,
    )
    supervisor = Supervisor(app, config, app_spec)
    _serve(supervisor)
    if getattr(supervisor.pool, "abandoned", False):
        # A thread of the solo or async pool still runs a job that was given back: it cannot
        # be stopped, so leave now rather than wait for it (its job may run again elsewhere).
        logging.shutdown()
        os._exit(0)


# Inspection ------------------------------------------------------------------------------------


@main.command()
@click.argument("job_id")
@click.option("--queue", "-q", help="The job's queue (default: search every known queue).")
@_target
def status(
    job_id: str, queue: str | None, app_spec: str | None, broker_url: str | None, namespace: str
) -> None:
    """Show a job's state, attempts and outcome."""
    app = _app(app_spec, broker_url, namespace)
    queues = [queue] if queue else app.broker.known_queues() or [app.default_queue]
    for name in queues:
        state = app.broker.job_state(name, job_id)
        if state.state != "unknown":
            console.print(f"job [bold]{job_id}[/] in queue [bold]{name}[/]: [bold]{state.state}[/]")
            console.print(f"attempts: {state.attempts}")
            if state.outcome is not None:
                outcome = msgspec.json.decode(state.outcome)
                console.print_json(data=outcome)
            return
    click.echo(
        f"error: no job {job_id} in queue(s) {', '.join(queues)}: it never existed, or it "
        "finished and its result expired",
        err=True,
    )
    sys.exit(1)


@main.command()
@_target
def queues(app_spec: str | None, broker_url: str | None, namespace: str) -> None:
    """Show every queue: ready, delayed, active and dead jobs, and counters."""
    app = _app(app_spec, broker_url, namespace)
    table = Table(
        "queue", "ready", "delayed", "active", "dead", "paused", "succeeded", "failed", "workers"
    )
    for name in app.broker.known_queues():
        info = app.broker.info(name)
        table.add_row(
            name,
            str(info.ready),
            str(info.delayed),
            str(info.active),
            str(info.dead),
            "yes" if info.paused else "",
            str(info.stats.get("succeeded", 0)),
            str(info.stats.get("failed", 0)),
            str(len(info.workers)),
        )
    console.print(table)


@main.group()
def dead() -> None:
    """The dead-letter set: jobs that failed for good."""


@dead.command("list")
@click.option("--queue", "-q", default="default", show_default=True)
@click.option("--limit", default=50, show_default=True)
@_target
def dead_list(
    queue: str, limit: int, app_spec: str | None, broker_url: str | None, namespace: str
) -> None:
    """List the oldest dead jobs of a queue with their errors."""
    app = _app(app_spec, broker_url, namespace)
    table = Table("died", "task", "error")
    table.columns.insert(0, Column("job", no_wrap=True, min_width=32))
    for job_id, died, payload in app.broker.dead_jobs(queue, limit):
        task = msgspec.json.decode(payload).get("task", "?") if payload else "?"
        outcome = app.broker.job_state(queue, job_id).outcome
        error = msgspec.json.decode(outcome).get("error") or {} if outcome else {}
        when = dt.datetime.fromtimestamp(died, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(job_id, when, task, f"{error.get('type', '')}: {error.get('message', '')}")
    console.print(table)


def _dead_selection(function: F) -> F:
    """Which dead jobs a command acts on: the given ids, else the oldest --limit."""
    function = _target(function)
    function = click.option(
        "--limit", default=100, show_default=True, help="With no ids: the oldest N."
    )(function)
    function = click.option("--queue", "-q", default="default", show_default=True)(function)
    return click.argument("job_ids", nargs=-1)(function)


@dead.command("retry")
@_dead_selection
def dead_retry(job_ids: tuple[str, ...], queue: str, limit: int, **target: Any) -> None:
    """Move dead jobs (the given ones, else the oldest --limit) back to ready."""
    moved = _app(**target).broker.redrive(queue, job_ids, limit)
    click.echo(f"{len(moved)} job(s) back in queue {queue}")


@dead.command("purge")
@_dead_selection
def dead_purge(job_ids: tuple[str, ...], queue: str, limit: int, **target: Any) -> None:
    """Delete dead jobs (the given ones, else the oldest --limit) for good."""
    deleted = _app(**target).broker.purge(queue, job_ids, limit)
    click.echo(f"{deleted} dead job(s) deleted from queue {queue}")


main.add_command(check_command)


@main.command()
def demo() -> None:
    """Run a mixed workload that shows every lesson at work (starts its own Valkey)."""
    from errands.demo.run import run_demo  # noqa: PLC0415

    sys.exit(run_demo(console))


@main.command()
@click.argument("app_spec", metavar="APP")
@click.option("-Q", "--queues", default=None, help="Queues to serve (default: the app's).")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--log-level", default="info", show_default=True)
def dev(app_spec: str, queues: str | None, concurrency: int, log_level: str) -> None:
    """Run APP's worker with a local server: an embedded Valkey when nothing answers.

    The server listens where the app's broker URL points (localhost:6379 by default), so
    producers configured the same way reach it with no change. Ctrl-C stops both.
    """
    from errands.embedded import serve_locally  # noqa: PLC0415
    from errands.worker import Supervisor, WorkerConfig, parse_queues  # noqa: PLC0415

    configure_logging(log_level)
    app = load_app(app_spec)
    server = serve_locally(app.broker_url)
    if server is not None:
        click.echo(f"embedded Valkey at {app.broker_url} (log: {server.log_path})", err=True)
    try:
        config = WorkerConfig(
            queues=parse_queues(queues or app.default_queue),
            concurrency=concurrency,
            lease_s=app.lease,
        )
        _serve(Supervisor(app, config, app_spec))
    finally:
        if server is not None:
            server.stop()


def _serve(supervisor: Supervisor) -> None:
    """Run a worker; one that stops on an error exits 1, for its process manager to restart it.

    The supervisor has logged the error (with its traceback when it is not an errands error)
    and given its jobs back.
    """
    try:
        asyncio.run(supervisor.run())
    except Exception:  # noqa: BLE001 - logged by the supervisor, which said why
        logging.shutdown()
        sys.exit(1)
