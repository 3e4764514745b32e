"""``errands limits APP``: each limiter of an app, what it allows and where it stands now.

Limiters are declared in code (`App.limiter`, ``rate_limit=`` / ``concurrency=`` on a task), so
the command imports the app; their state comes from the inspector (`Inspector.limiter`), per
queue of the tasks that use them.
"""

from __future__ import annotations

import click
import msgspec
from rich.table import Table

from errands.app import App
from errands.broker.views import LimiterState, LimitKeyState
from errands.cli_inspect import console
from errands.limits import Limiter
from errands.loading import load_app

__all__ = ["limits"]


def limiter_queues(app: App, limiter: Limiter) -> list[str]:
    """The queues whose jobs `limiter` counts: those of the tasks that use it."""
    queues = {t.options.queue for t in app.tasks.values() if limiter in t.options.limiters}
    return sorted(queues) or [app.default_queue]


def _states(app: App, keys: int) -> list[LimiterState]:
    return [
        app.inspector.limiter(queue, limiter, limit=keys)
        for limiter in app.limiters.values()
        for queue in limiter_queues(app, limiter)
    ]


def _tokens(key: LimitKeyState, state: LimiterState) -> str:
    if key.tokens is None:
        return ""
    return f"{key.tokens}/{state.burst}"


def _next(key: LimitKeyState) -> str:
    if key.next_start_in_s is None:
        return ""
    return "now" if key.next_start_in_s <= 0 else f"in {key.next_start_in_s:.2f}s"


def _running(key: LimitKeyState, state: LimiterState) -> str:
    return "" if state.concurrency is None else f"{key.running}/{state.concurrency}"


@click.command()
@click.argument("app_spec", metavar="APP")
@click.option("--keys", default=20, show_default=True, help="Keys shown per keyed limiter.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per limiter and queue.")
def limits(app_spec: str, keys: int, as_json: bool) -> None:
    """Show each limiter of APP (module:app): its rate, tokens, running and waiting jobs.

    "waiting" counts the jobs in Redis for a rate slot booked for them and those parked for a
    concurrency slot; none of them holds a worker or has spent an attempt.
    """
    app = load_app(app_spec)
    if not app.limiters:
        click.echo("this app declares no limiters (app.limiter, or rate_limit= on a task)")
        return
    states = _states(app, keys)
    if as_json:
        for state in states:
            click.echo(msgspec.json.encode(state))
        return
    table = Table("limiter", "queue", "allows", "key", "tokens", "next start", "running",
                  "waiting", "back-off")  # fmt: skip
    for state in states:
        rows = state.keys or [
            LimitKeyState("", state.burst if state.rate else None, 0.0 if state.rate else None,
                          0, 0, 0, 0.0)
        ]  # fmt: skip
        for key in rows:
            table.add_row(
                state.name,
                state.queue,
                state.allows,
                key.key or ("(none yet)" if state.keys == [] else ""),
                _tokens(key, state),
                _next(key),
                _running(key, state),
                str(key.booked + key.parked),
                f"{key.backoff_s:.1f}s" if key.backoff_s > 0 else "",
            )
        if state.cursor is not None:
            table.add_row(state.name, state.queue, "", f"... (more than {keys} keys)", *[""] * 5)
    console.print(table)
