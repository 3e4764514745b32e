"""``errands exporter APP --port PORT`` and the worker's ``--metrics-port``: Prometheus metrics.

The worker serves what it counts of its own jobs (`errands.observe.metrics`); the exporter, one
per fleet, serves the queues' gauges read from Redis (`errands.observe.exporter`). Both import
prometheus_client only when used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from errands.loading import load_app
from errands.observe.logging import configure_logging

if TYPE_CHECKING:
    from errands.worker import Supervisor

__all__ = ["exporter", "worker_metrics"]


@contextlib.contextmanager
def worker_metrics(supervisor: Supervisor, port: int | None) -> Iterator[None]:
    """Serve the worker's metrics on `port` while the block runs (nothing when None)."""
    if port is None:
        yield
        return
    from errands.observe.metrics import serve_worker_metrics  # noqa: PLC0415 - only when used

    with serve_worker_metrics(supervisor, port):
        yield


@click.command()
@click.argument("app_spec", metavar="APP")
@click.option("--port", type=click.IntRange(0, 65535), required=True, help="Port to serve on.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to bind.")  # noqa: S104
@click.option(
    "--max-queues",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="The most queues read per scrape (by name).",
)
@click.option("--log-level", default="info", show_default=True)
def exporter(app_spec: str, port: int, host: str, max_queues: int, log_level: str) -> None:
    """Serve the queue metrics of APP (module:app) read from Redis, for Prometheus.

    One exporter per fleet: ready, delayed, active and dead jobs and the oldest ready job's age
    per queue, limiter denials, missed schedule fires, and errands_exporter_up (0 while Redis
    does not answer). Runs until SIGTERM or Ctrl-C.
    """
    from errands.observe.exporter import run_exporter  # noqa: PLC0415 - only when used

    configure_logging(log_level)
    app = load_app(app_spec)
    try:
        run_exporter(app, port, host, max_queues=max_queues)
    finally:
        app.close()
