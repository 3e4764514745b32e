"""When a schedule fires: its spec, checked, and its fire times as pure functions.

A spec is a cron expression (5 fields, or 6 with seconds first) in a time zone, or a fixed
interval. Cron times are computed by cronsim, which handles daylight saving time as Debian's
cron does: a wall-clock time that does not exist on the change day (02:30 when clocks go from
02:00 to 03:00) fires once, at the first valid instant after it (03:00); a wall-clock time that
happens twice (02:30 when clocks go back) fires once, the first time; an expression whose hour
field is ``*`` fires every real hour, 25 times on a 25-hour day. Intervals ignore time zones:
they count real seconds from their start (or from the Unix epoch).

Every fire has a nominal time, an instant: the fire's identity (`fire_id`), what the task sees
as ``ctx.scheduled_for``, and what catch-up counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from cronsim import CronSim, CronSimError

from errands.errors import ConfigurationError

__all__ = ["ScheduleSpec", "fire_id", "fires_after", "next_fire", "zone"]

#: The shortest interval: a shorter one would fire faster than a scheduler's tick can follow.
MIN_EVERY_S = 1.0


class ScheduleSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """When a schedule fires (exactly one of `cron` and `every_s`).

    Attributes:
        cron: a cron expression: 5 fields (minute hour day month weekday), or 6 with seconds
            first; names (``mon``, ``jan``) and ``L`` as cronsim reads them.
        every_s: a fixed interval in seconds (at least `MIN_EVERY_S`).
        tz: the IANA time zone the cron expression is read in (``Europe/Prague``).
        start: no fire before this instant (Unix seconds); intervals count from it.
        end: no fire after this instant (Unix seconds).
    """

    cron: str | None = None
    every_s: float | None = None
    tz: str = "UTC"
    start: float | None = None
    end: float | None = None

    def check(self) -> ScheduleSpec:
        """The spec itself, once it is known to be valid.

        Raises:
            ConfigurationError: it says what is wrong and how to write it right.
        """
        if (self.cron is None) == (self.every_s is None):
            raise ConfigurationError(
                "a schedule needs exactly one of cron='*/5 * * * *' and every=timedelta(...)"
            )
        zone(self.tz)
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(UTC))
            except CronSimError as error:
                raise ConfigurationError(
                    f"the cron expression {self.cron!r} is not valid ({error}): give 5 fields "
                    "(minute hour day-of-month month day-of-week, e.g. '*/5 * * * *') or 6 with "
                    "seconds first"
                ) from None
        if self.every_s is not None and not (
            math.isfinite(self.every_s) and self.every_s >= MIN_EVERY_S
        ):
            raise ConfigurationError(
                f"a schedule's interval must be at least {MIN_EVERY_S:g} s, not {self.every_s!r}"
            )
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigurationError(f"the schedule ends ({self.end}) before it starts")
        return self


def zone(name: str) -> ZoneInfo:
    """The time zone called `name`.

    Raises:
        ConfigurationError: there is no such zone on this machine.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {name!r}: give an IANA name such as 'Europe/Prague' or 'UTC' "
            "(install the tzdata package where the system has no zone database)"
        ) from None


def fires_after(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """Every nominal fire time of `spec` strictly after `after`, in order, in its time zone.

    The iterator is endless unless the spec has an `end`.
    """
    tz = zone(spec.tz)
    begin = after.astimezone(tz)
    if spec.start is not None:
        # The start itself may fire: begin just before it.
        first = datetime.fromtimestamp(spec.start, tz) - timedelta(microseconds=1)
        begin = max(begin, first)
    end = datetime.fromtimestamp(spec.end, tz) if spec.end is not None else None
    fires = _cron_fires(spec.cron, begin) if spec.cron is not None else _interval_fires(spec, begin)
    for fire in fires:
        if end is not None and fire > end:
            return
        yield fire


def next_fire(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first nominal fire time strictly after `after` (None: the schedule has ended)."""
    return next(fires_after(spec, after), None)


def _cron_fires(expression: str, begin: datetime) -> Iterator[datetime]:
    yield from CronSim(expression, begin)


def _interval_fires(spec: ScheduleSpec, begin: datetime) -> Iterator[datetime]:
    assert spec.every_s is not None
    # Whole milliseconds, so that a fire's instant (and so its id) is the same in every process.
    every_ms = round(spec.every_s * 1000)
    anchor_ms = round((spec.start or 0.0) * 1000)
    begin_ms = math.floor(begin.timestamp() * 1000)
    k = max(0, (begin_ms - anchor_ms) // every_ms + 1)
    tz = begin.tzinfo
    while True:
        yield datetime.fromtimestamp((anchor_ms + k * every_ms) / 1000, tz)
        k += 1


def fire_id(schedule_id: str, nominal: datetime) -> str:
    """The job id of one fire: the same in every scheduler, so a fire is enqueued once."""
    return f"{schedule_id}@{round(nominal.timestamp() * 1000)}"
