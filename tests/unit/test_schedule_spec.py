"""Fire times of schedules: cron in a time zone across daylight saving changes, and intervals.

The DST rules (docs/scheduling.md): a wall-clock time that does not exist on the change day fires
once at the first valid instant after it; a repeated one fires once; a cron whose hour is ``*``
fires every real hour. Properties are checked with hypothesis over several zones and years.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errands.errors import ConfigurationError
from errands.schedule.spec import ScheduleSpec, fire_id, fires_after, next_fire

# Zones whose clocks change on different rules: EU (last Sunday of March and October), US
# (second Sunday of March, first of November), southern hemisphere (April and October).
ZONES = ["Europe/Prague", "America/New_York", "Australia/Sydney", "America/Santiago"]
PRAGUE = ZoneInfo("Europe/Prague")


def _take(spec: ScheduleSpec, after: datetime, n: int) -> list[datetime]:
    return list(itertools.islice(fires_after(spec, after), n))


def _iso(spec: ScheduleSpec, after: datetime, n: int) -> list[str]:
    return [f.isoformat() for f in _take(spec, after, n)]


def test_a_wall_clock_time_skipped_by_the_change_fires_at_the_first_valid_instant_after() -> None:
    spec = ScheduleSpec(cron="30 2 * * *", tz="Europe/Prague")
    assert _iso(spec, datetime(2026, 3, 28, 12, tzinfo=PRAGUE), 3) == [
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that night
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_a_wall_clock_time_repeated_by_the_change_fires_once() -> None:
    spec = ScheduleSpec(cron="30 2 * * *", tz="Europe/Prague")
    assert _iso(spec, datetime(2026, 10, 24, 12, tzinfo=PRAGUE), 2) == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30 only
        "2026-10-26T02:30:00+01:00",
    ]


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 10, 25), 25), (date(2026, 3, 29), 23)])
def test_an_hourly_cron_fires_once_per_real_hour_of_a_change_day(day: date, hours: int) -> None:
    spec = ScheduleSpec(cron="0 * * * *", tz="Europe/Prague")
    day_start = datetime(day.year, day.month, day.day, tzinfo=PRAGUE)
    fires = list(
        itertools.takewhile(
            lambda f: f.date() == day, fires_after(spec, day_start - timedelta(seconds=1))
        )
    )
    assert len(fires) == hours
    if hours == 25:  # 02:00 comes twice, an hour apart
        assert [f.isoformat() for f in fires[2:4]] == [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
        ]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    start=st.dates(date(2025, 1, 1), date(2030, 12, 31)),
)
def test_a_daily_cron_fires_once_on_every_local_day(
    zone: str, hour: int, minute: int, start: date
) -> None:
    spec = ScheduleSpec(cron=f"{minute} {hour} * * *", tz=zone)
    tz = ZoneInfo(zone)
    begin = datetime(start.year, start.month, start.day, tzinfo=tz) - timedelta(seconds=1)
    fires = _take(spec, begin, 400)  # more than a year: every change of the year is crossed
    days = [f.date() for f in fires]
    assert days == [start + timedelta(days=i) for i in range(400)]
    for fire in fires:
        # At the wall-clock time asked for, or (it did not exist) within the hour after it.
        asked = datetime(fire.year, fire.month, fire.day, hour, minute, tzinfo=tz)
        assert fire.utcoffset() is not None
        assert (
            timedelta(0)
            <= fire.replace(tzinfo=None) - asked.replace(tzinfo=None)
            <= (timedelta(hours=1))
        )


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    minute=st.integers(0, 59),
    start=st.datetimes(datetime(2025, 1, 1), datetime(2030, 12, 31)),
)
def test_an_hourly_cron_is_one_real_hour_apart_across_every_change(
    zone: str, minute: int, start: datetime
) -> None:
    spec = ScheduleSpec(cron=f"{minute} * * * *", tz=zone)
    fires = _take(spec, start.replace(tzinfo=UTC), 24 * 200)
    gaps = {(b.timestamp() - a.timestamp()) for a, b in itertools.pairwise(fires)}
    assert gaps == {3600.0}


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    every_s=st.integers(1, 7 * 86_400),
    start=st.datetimes(datetime(2025, 1, 1), datetime(2030, 12, 31)),
)
def test_an_interval_counts_real_seconds_whatever_the_zone(
    zone: str, every_s: int, start: datetime
) -> None:
    spec = ScheduleSpec(every_s=float(every_s), tz=zone)
    after = start.replace(tzinfo=UTC)
    fires = _take(spec, after, 50)
    assert fires[0] > after
    assert fires[0].timestamp() % every_s == 0  # counted from the epoch
    assert {b.timestamp() - a.timestamp() for a, b in itertools.pairwise(fires)} == {every_s}


def test_fires_are_strictly_after_the_given_instant_and_within_start_and_end() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()
    spec = ScheduleSpec(every_s=60, start=start, end=start + 180)
    before = datetime(2026, 1, 1, tzinfo=UTC)
    assert [f.timestamp() - start for f in fires_after(spec, before)] == [0, 60, 120, 180]
    at_start = datetime.fromtimestamp(start, UTC)
    assert [f.timestamp() - start for f in fires_after(spec, at_start)] == [60, 120, 180]
    assert next_fire(spec, datetime.fromtimestamp(start + 180, UTC)) is None


def test_a_six_field_cron_has_seconds_first() -> None:
    spec = ScheduleSpec(cron="*/20 * * * * *")
    after = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert _iso(spec, after, 3) == [
        "2026-01-01T12:00:20+00:00",
        "2026-01-01T12:00:40+00:00",
        "2026-01-01T12:01:00+00:00",
    ]


def test_a_fire_id_is_the_schedule_and_the_instant_whatever_the_zone_it_is_written_in() -> None:
    utc = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert fire_id("report", utc) == fire_id("report", utc.astimezone(PRAGUE))
    assert fire_id("report", utc) == f"report@{int(utc.timestamp() * 1000)}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScheduleSpec(), "exactly one of cron="),
        (ScheduleSpec(cron="* * * * *", every_s=5), "exactly one of cron="),
        (ScheduleSpec(cron="61 * * * *"), "'61 \\* \\* \\* \\*' is not valid \\(Bad minute\\)"),
        (ScheduleSpec(cron="* * *"), "give 5 fields"),
        (ScheduleSpec(every_s=0.5), "at least 1 s, not 0.5"),
        (ScheduleSpec(every_s=float("nan")), "at least 1 s"),
        (ScheduleSpec(cron="* * * * *", tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (ScheduleSpec(every_s=5, start=10, end=5), "ends \\(5\\) before it starts"),
    ],
)
def test_a_wrong_spec_is_one_clear_error(spec: ScheduleSpec, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        spec.check()
