"""``errands limits [APP]``: each limiter of an app, what it allows and where it stands now.

Limiters are declared in code (`App.limiter`, ``rate_limit=`` / ``concurrency=`` on a task), so
the command imports the app (APP, else ``ERRANDS_APP``, else ``[tool.errands] app``); their
state comes from the inspector (`Inspector.limiter`), per queue of the tasks that use them.
"""

from __future__ import annotations

import click
import msgspec

from errands.app import App
from errands.broker.views import LimiterState, LimitKeyState
from errands.cli_output import Listing, emit_json
from errands.cli_target import Target, resolve_target
from errands.errors import ConfigurationError
from errands.limits import Limiter
from errands.loading import ENV_APP

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


def _app(app_spec: str | None) -> Target:
    """The app whose limiters are shown: limiters live in code, so an app must be named."""
    chosen = resolve_target(app_spec, None, None)
    if not chosen.discovered:
        raise ConfigurationError(
            "limiters are declared in code: name the app, as `errands limits package.module:app`, "
            f'or set {ENV_APP}, or app = "package.module:app" under [tool.errands] in '
            "pyproject.toml"
        )
    return chosen


@click.command()
@click.argument("app_spec", metavar="[APP]", required=False)
@click.option("--keys", default=20, show_default=True, help="Keys shown per keyed limiter.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def limits(app_spec: str | None, keys: int, as_json: bool) -> None:
    """Show each limiter of APP (module:app): its rate, tokens, running and waiting jobs.

    APP defaults to $ERRANDS_APP, else to app under [tool.errands] in pyproject.toml.
    "waiting" counts the jobs in Redis for a rate slot booked for them and those parked for a
    concurrency slot; none of them holds a worker or has spent an attempt.
    """
    chosen = _app(app_spec)
    app = chosen.app
    states = _states(app, keys) if app.limiters else []
    if as_json:
        emit_json({**chosen.header(), "limiters": [msgspec.to_builtins(s) for s in states]})
    if not states:
        click.echo(
            f"no limiters: {chosen.source} declares none (app.limiter, or rate_limit= on a task)",
            err=True,
        )
        return
    if as_json:
        return
    table = Listing("limiter", "queue", "allows", "key", "tokens", "next start", "running",
                    "waiting", "back-off", wrap=["allows"])  # fmt: skip
    for state in states:
        rows = state.keys or [
            LimitKeyState("", state.burst if state.rate else None, 0.0 if state.rate else None,
                          0, 0, 0, 0.0)
        ]  # fmt: skip
        for key in rows:
            table.add(
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
            table.add(state.name, state.queue, "", f"(more than {keys} keys)", *[""] * 5)
    table.print()
