"""``errands events``: the job events of the app's queues, or live with ``--follow``.

The stream is off unless the app sets ``events_maxlen`` (`errands.observe.events`).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
import msgspec

from errands.app import App
from errands.cli_inspect import target, target_app
from errands.cli_output import time_option
from errands.errors import ConfigurationError
from errands.observe.events import JobEvent, follow_events, read_events

if TYPE_CHECKING:
    import redis

__all__ = ["events"]


def _queues(app: App, given: tuple[str, ...]) -> list[str]:
    if given:
        return list(given)
    names: list[str] = []
    after: str | None = None
    while len(names) < 10_000:
        page = app.inspector.queues(after=after, limit=100)
        names += [q.name for q in page.items]
        if page.cursor is None or not page.items:
            break
        after = page.cursor
    return names


def _line(event: JobEvent) -> str:
    parts = [event.at, event.queue, f"{event.event:<9}", event.job]
    parts.append(event.task or "-")
    parts.append(f"attempt {event.attempt}")
    if event.error:
        parts.append(event.error)
    return "  ".join(parts)


def _client(app: App) -> redis.Redis:
    from errands.broker.redis import RedisBroker  # noqa: PLC0415

    broker = app.broker
    if not isinstance(broker, RedisBroker):
        raise ConfigurationError(
            f"{type(broker).__name__} keeps no event stream: errands events reads Redis only"
        )
    return broker.client


@click.command()
@target
@click.option("-q", "--queue", "queue_names", multiple=True, help="A queue (repeat; default all).")
@click.option("--follow", "-f", is_flag=True, help="Print events as they come, until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="JSON (with --follow: one object a line).")
@click.option("--since", help="From this age (30m, 2h, 1d) or time (2026-12-01T09:30, UTC).")
@click.option("-n", "--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def events(
    app_spec: str | None,
    broker_url: str | None,
    namespace: str,
    queue_names: tuple[str, ...],
    follow: bool,
    as_json: bool,
    since: str | None,
    limit: int,
) -> None:
    """Job events (enqueued, started, succeeded, retried, dead, cancelled), oldest first.

    Events are kept only when the app sets events_maxlen (off by default).
    """
    app = target_app(app_spec, broker_url, namespace)
    client = _client(app)
    queues = _queues(app, queue_names)
    found = read_events(client, app.namespace, queues, since=time_option(since), limit=limit)
    if as_json and not follow:
        click.echo(json.dumps([msgspec.to_builtins(e) for e in found]))
    else:
        for event in found:
            click.echo(msgspec.json.encode(event).decode() if as_json else _line(event))
    if not follow:
        if not found and not as_json:
            click.echo(
                f"no events in {app.broker_url} namespace {app.namespace!r} "
                f"({len(queues)} queues): the stream is kept only when the app sets "
                "events_maxlen",
                err=True,
            )
        return
    after: dict[str, str] = {}
    for event in found:
        after[event.queue] = event.id
    if not queues:
        raise ConfigurationError("no queue to follow yet: name one with -q QUEUE")
    try:
        for new in follow_events(client, app.namespace, queues, after=after or None):
            if new is None:
                continue
            click.echo(msgspec.json.encode(new).decode() if as_json else _line(new))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return
