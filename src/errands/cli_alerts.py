"""``errands alerts APP``: evaluate the app's alerts until SIGTERM or SIGINT.

Any number may run (and ``errands beat`` evaluates them too when the app declares alerts): one
leads and sends, the others stand by (`errands.observe.alerts`).
"""

from __future__ import annotations

import asyncio
import signal

import click

from errands.app import App
from errands.errors import ConfigurationError
from errands.loading import load_app
from errands.observe.alerts import AlertEvaluator
from errands.observe.logging import configure_logging

__all__ = ["alerts"]


@click.command()
@click.argument("app_spec", metavar="APP")
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
def alerts(app_spec: str, log_level: str, log_format: str) -> None:
    """Evaluate the alerts APP (module:app) declares with app.alerts(...), while it leads.

    Run several for high availability: one leads and sends each incident's trigger and resolve
    once; another takes over within 18 s of its death and carries on its open incidents.
    """
    configure_logging(log_level, "json" if log_format == "json" else "console")
    app = load_app(app_spec)
    if app.alert_config is None:
        raise ConfigurationError(
            f"{app_spec} declares no alerts: call app.alerts(DeadJobs(), sinks=[...]) in it"
        )
    asyncio.run(_alerts(app))


async def _alerts(app: App) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await AlertEvaluator(app).run(stopping)
    finally:
        await app.broker.aclose()
