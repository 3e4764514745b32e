"""The `errands` command: thin; it parses arguments and calls the modules that do the work."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click
from rich.console import Console

from errands.check.cli import check_command
from errands.cli_alerts import alerts
from errands.cli_events import events
from errands.cli_inspect import dead, queues, status
from errands.cli_limits import limits
from errands.cli_metrics import exporter, worker_metrics
from errands.cli_ops import cancel, pause, purge, resume, workers
from errands.cli_schedules import beat, schedules
from errands.cli_web import api, schema
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
@click.option(
    "--beat", is_flag=True, help="Run a scheduler in this worker too (see `errands beat`)."
)
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics on this port.")
@click.option(
    "--log-jobs",
    type=click.Choice(["all", "failures", "none"]),
    default="all",
    show_default=True,
    help="Job outcome lines: all, failures only (retries too; for busy fleets), or none.",
)
def worker(
    app_spec: str,
    queues: str | None,
    concurrency: int | None,
    pool: Literal["process", "solo", "async"],
    prefetch: int | None,
    grace_period: float,
    lease: float | None,
    beat: bool,
    log_level: str,
    log_format: Literal["console", "json"],
    metrics_port: int | None,
    log_jobs: Literal["all", "failures", "none"],
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
        log_jobs=log_jobs,
    )
    supervisor = Supervisor(app, config, app_spec)
    with worker_metrics(supervisor, metrics_port):
        _serve(supervisor, beat=beat)
    if getattr(supervisor.pool, "abandoned", False):
        # A thread of the solo or async pool still runs a job that was given back: it cannot
        # be stopped, so leave now rather than wait for it (its job may run again elsewhere).
        logging.shutdown()
        os._exit(0)


main.add_command(queues)
main.add_command(status)
main.add_command(dead)
main.add_command(beat)
main.add_command(schedules)
main.add_command(limits)
main.add_command(exporter)
main.add_command(check_command)
main.add_command(api)
main.add_command(schema)
for _command in (workers, purge, pause, resume, cancel, alerts, events):
    main.add_command(_command)


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
@click.option(
    "--reload", is_flag=True, help="Restart the worker when a .py file here changes (watchfiles)."
)
def dev(app_spec: str, queues: str | None, concurrency: int, log_level: str, reload: bool) -> None:
    """Run APP's worker with a local server: an embedded Valkey when nothing answers.

    The server listens where the app's broker URL points (localhost:6379 by default), so
    producers configured the same way reach it with no change. Ctrl-C stops both. With
    --reload the worker runs in a child process, restarted when a .py file changes.
    """
    from errands.cli_dev import reloader  # noqa: PLC0415
    from errands.embedded import serve_locally  # noqa: PLC0415
    from errands.worker import Supervisor, WorkerConfig, parse_queues  # noqa: PLC0415

    configure_logging(log_level)
    app = load_app(app_spec)
    # Checked before anything starts: --reload without watchfiles says so and starts nothing.
    restarts = reloader(app_spec, queues, concurrency, log_level) if reload else None
    server = serve_locally(app.broker_url)
    if server is not None:
        click.echo(f"embedded Valkey at {app.broker_url} (log: {server.log_path})", err=True)
    try:
        if restarts is not None:
            restarts()
            return
        config = WorkerConfig(
            queues=parse_queues(queues or app.default_queue),
            concurrency=concurrency,
            lease_s=app.lease,
        )
        _serve(Supervisor(app, config, app_spec))
    finally:
        if server is not None:
            server.stop()


def _serve(supervisor: Supervisor, *, beat: bool = False) -> None:
    """Run a worker; one that stops on an error exits 1, for its process manager to restart it.

    The supervisor has logged the error (with its traceback when it is not an errands error)
    and given its jobs back. With `beat`, a scheduler runs on the same loop until the worker
    has stopped.
    """
    try:
        asyncio.run(_with_beat(supervisor) if beat else supervisor.run())
    except Exception:  # noqa: BLE001 - logged by the supervisor, which said why
        logging.shutdown()
        sys.exit(1)


async def _with_beat(supervisor: Supervisor) -> None:
    from errands.observe.alerts import run_alongside  # noqa: PLC0415 - only with --beat
    from errands.schedule.scheduler import Scheduler  # noqa: PLC0415 - only with --beat

    stopping = asyncio.Event()
    scheduler = asyncio.create_task(Scheduler(supervisor.app).run(stopping))
    evaluator = asyncio.create_task(run_alongside(supervisor.app, stopping))
    try:
        await supervisor.run()
    finally:
        stopping.set()
        await scheduler
        await evaluator
