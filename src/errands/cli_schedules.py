"""``errands beat`` (a scheduler) and ``errands schedules ...`` (schedules seen and changed).

``errands beat APP`` runs a scheduler until SIGTERM or SIGINT: any number may run, one leads
(`errands.schedule.scheduler`). ``errands schedules list|pause|resume|trigger|backfill|delete``
read and change the stored schedules through ``app.schedules``.
``errands schedules preview "CRON" --tz ZONE --after ISO8601 -n N`` prints the next fire times
of a cron expression (or of ``--every SECONDS``), one per line as ISO 8601 with its UTC offset,
for checking a schedule before it is deployed: the days clocks change show what happens then.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from datetime import UTC, datetime

import click

from errands.app import App
from errands.cli_output import Listing, confirm_or_refuse, emit_json, iso_json
from errands.cli_target import nothing_found, resolve_target, target, target_app
from errands.errors import ConfigurationError
from errands.loading import load_app
from errands.observe.alerts import run_alongside
from errands.observe.logging import configure_logging
from errands.schedule.manager import ScheduleInfo
from errands.schedule.scheduler import Scheduler
from errands.schedule.spec import ScheduleSpec, fires_after, zone

__all__ = [
    "beat",
    "schedule_document",
    "schedules",
]


@click.command()
@click.argument("app_spec", metavar="APP")
@click.option("--log-level", default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
def beat(app_spec: str, log_level: str, log_format: str) -> None:
    """Run a scheduler for APP (module:app): it fires the app's schedules while it leads.

    Run several for high availability: one leads, another takes over within 12 s of its death,
    and no fire is ever sent twice.
    """
    configure_logging(log_level, "json" if log_format == "json" else "console")
    asyncio.run(_beat(load_app(app_spec)))


async def _beat(app: App) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await asyncio.gather(Scheduler(app).run(stopping), run_alongside(app, stopping))
    finally:
        await app.broker.aclose()


@click.group()
def schedules() -> None:
    """Periodic work: list, pause, resume, trigger and backfill schedules; preview a cron."""


def schedule_document(info: ScheduleInfo, *, json: bool = False) -> dict[str, object]:
    """A schedule as list shows it: fire times in its zone (a table) or in UTC (JSON)."""
    d, st = info.definition, info.state

    def when(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return iso_json(moment) if json else moment.isoformat(timespec="seconds")

    return {
        "id": d.id,
        "task": d.task,
        "when": d.spec.cron if d.spec.cron is not None else f"every {d.spec.every_s:g}s",
        "tz": d.spec.tz,
        "origin": d.origin,
        "paused": info.pause.paused,
        "note": info.pause.note,
        "next_fire": when(info.next_fire),
        "last_fire": when(info.last_fire),
        "fired": st.fired if st else 0,
        "missed": st.missed if st else 0,
        "skipped": st.skipped if st else 0,
    }


@schedules.command("list")
@target
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (times in UTC).")
def list_schedules(
    app_spec: str | None, broker_url: str | None, namespace: str | None, as_json: bool
) -> None:
    """Show every schedule: when it fires, its next and last fire, fires missed and skipped.

    The table shows fire times in each schedule's zone (ISO 8601 with the offset); ``--json``
    in UTC.
    """
    chosen = resolve_target(app_spec, broker_url, namespace)
    found = chosen.app.schedules.list()
    if as_json:
        emit_json(
            {**chosen.header(), "schedules": [schedule_document(i, json=True) for i in found]}
        )
    if not found:
        click.echo(nothing_found(chosen, "no schedules"), err=True)
        return
    if as_json:
        return
    columns = ["id", "task", "when", "tz", "origin", "paused", "next_fire", "last_fire"]
    listing = Listing(*columns, "fired", "missed", "skipped", "note", wrap=["note"])
    for info in found:
        row = schedule_document(info)
        listing.add(
            *(str(row[c] if row[c] is not None else "") for c in columns),
            str(row["fired"]),
            str(row["missed"]),
            str(row["skipped"]),
            str(row["note"] or ""),
        )
    listing.print()


@schedules.command()
@target
@click.argument("schedule_id")
@click.option("--note", default="", help="Why, for the others (shown by list).")
def pause(
    app_spec: str | None, broker_url: str | None, namespace: str | None, schedule_id: str, note: str
) -> None:
    """Pause SCHEDULE_ID: it fires no more until resumed."""
    target_app(app_spec, broker_url, namespace).schedules.pause(schedule_id, note)
    click.echo(f"paused {schedule_id}")


@schedules.command()
@target
@click.argument("schedule_id")
@click.option(
    "--from",
    "resume_from",
    type=click.Choice(["last", "now"]),
    default="last",
    show_default=True,
    help="last: catch up the fires the pause missed; now: skip them.",
)
def resume(
    app_spec: str | None,
    broker_url: str | None,
    namespace: str | None,
    schedule_id: str,
    resume_from: str,
) -> None:
    """Resume SCHEDULE_ID."""
    app = target_app(app_spec, broker_url, namespace)
    app.schedules.resume(schedule_id, "now" if resume_from == "now" else "last")
    click.echo(f"resumed {schedule_id} from {resume_from}")


@schedules.command()
@target
@click.argument("schedule_id")
def trigger(
    app_spec: str | None, broker_url: str | None, namespace: str | None, schedule_id: str
) -> None:
    """Fire SCHEDULE_ID now, once, outside its times; print the job id."""
    handle = target_app(app_spec, broker_url, namespace).schedules.trigger(schedule_id)
    click.echo(handle.id)


@schedules.command()
@target
@click.argument("schedule_id")
@click.option("--start", required=True, help="ISO 8601 (UTC when it has no offset).")
@click.option("--end", required=True, help="ISO 8601 (UTC when it has no offset).")
def backfill(
    app_spec: str | None,
    broker_url: str | None,
    namespace: str | None,
    schedule_id: str,
    start: str,
    end: str,
) -> None:
    """Send the fires of SCHEDULE_ID between START and END (one already sent is not sent again)."""
    app = target_app(app_spec, broker_url, namespace)
    try:
        begin, until = _instant(start, "UTC"), _instant(end, "UTC")
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    handles = app.schedules.backfill(schedule_id, begin, until)
    click.echo(f"{len(handles)} fires sent")


@schedules.command()
@target
@click.argument("schedule_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed off a terminal).")
def delete(
    app_spec: str | None, broker_url: str | None, namespace: str | None, schedule_id: str, yes: bool
) -> None:
    """Delete SCHEDULE_ID, its state and its pause."""
    confirm_or_refuse(f"delete schedule {schedule_id}", yes)
    target_app(app_spec, broker_url, namespace).schedules.delete(schedule_id)
    click.echo(f"deleted {schedule_id}")


@schedules.command()
@click.argument("cron", required=False)
@click.option("--every", "every_s", type=float, help="An interval in seconds instead of a cron.")
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone of the cron.")
@click.option("--after", help="ISO 8601 instant to start after (default: now).")
@click.option("-n", "count", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON document: each fire in UTC and in ZONE."
)
def preview(
    cron: str | None, every_s: float | None, tz: str, after: str | None, count: int, as_json: bool
) -> None:
    """Print the next N fire times of CRON (5 fields, or 6 with seconds first) in ZONE.

    Times are ISO 8601 with their UTC offset, in the schedule's zone. A wall-clock time that
    does not exist on a day clocks go forward fires at the first valid instant after it; one
    that happens twice fires once; a cron whose hour is * fires every real hour.
    """
    try:
        spec = ScheduleSpec(cron=cron, every_s=every_s, tz=tz).check()
        start = _instant(after, tz)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    fires = list(itertools.islice(fires_after(spec, start), count))
    if as_json:
        emit_json(
            {
                "cron": spec.cron,
                "every_s": spec.every_s,
                "tz": tz,
                "fires": [{"at": iso_json(f), "local": f.isoformat()} for f in fires],
            }
        )
        return
    for fire in fires:
        click.echo(fire.isoformat())


def _instant(text: str | None, tz: str) -> datetime:
    """`text` as an aware instant: an ISO 8601 time without an offset is read in `tz`."""
    if text is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"--after {text!r} is not an ISO 8601 time: write it as 2026-10-25T01:30 "
            "(read in --tz) or 2026-10-25T01:30+02:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone(tz))
