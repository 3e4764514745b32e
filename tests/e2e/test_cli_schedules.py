"""``errands schedules ...`` on real Redis, and ``preview`` across daylight saving changes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from errands import App
from errands.cli import main


def _invoke(app: App, *args: str, input: str | None = None) -> tuple[int, str]:  # noqa: A002
    result = CliRunner().invoke(
        main,
        [*args, "--broker-url", app.broker_url, "--namespace", app.namespace],
        input=input,
    )
    return result.exit_code, result.output


def _preview(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["schedules", "preview", *args])
    return result.exit_code, result.output.splitlines()


def test_preview_shows_the_spring_forward_and_fall_back_days_as_iso_8601_with_offsets() -> None:
    code, lines = _preview("30 2 * * *", "--tz", "Europe/Prague", "--after", "2026-03-28T12:00")
    assert code == 0
    assert lines[:2] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    code, lines = _preview(
        "0 * * * *", "--tz", "Europe/Prague", "--after", "2026-10-25T01:30", "-n", "3"
    )
    assert lines == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    code, lines = _preview("0 9 * * mon", "--tz", "America/New_York", "--after", "2026-11-01T00:00")
    assert lines[0] == "2026-11-02T09:00:00-05:00"


def test_preview_json_gives_each_fire_in_utc_and_in_its_zone() -> None:
    code, lines = _preview("0 2 * * *", "--tz", "Europe/Prague", "--after", "2026-10-24T12:00",
                           "-n", "2", "--json")  # fmt: skip
    assert code == 0
    document = json.loads("\n".join(lines))
    assert document["fires"] == [
        {"at": "2026-10-25T00:00:00.000Z", "local": "2026-10-25T02:00:00+02:00"},
        {"at": "2026-10-26T01:00:00.000Z", "local": "2026-10-26T02:00:00+01:00"},
    ]


def test_preview_of_an_interval_and_of_wrong_input_is_clear() -> None:
    code, lines = _preview("--every", "90", "--after", "2026-01-01T00:00Z", "-n", "2")
    assert (code, lines) == (0, ["2026-01-01T00:01:30+00:00", "2026-01-01T00:03:00+00:00"])
    code, lines = _preview("61 * * * *")
    assert code == 1
    assert "is not valid (Bad minute)" in lines[-1]
    code, lines = _preview("* * * * *", "--tz", "Mars/Olympus")
    assert code == 1
    assert "unknown time zone 'Mars/Olympus'" in lines[-1]
    code, lines = _preview("* * * * *", "--after", "yesterday")
    assert code == 1
    assert "not an ISO 8601 time" in lines[-1]


def test_list_pause_resume_trigger_and_delete_a_schedule(app: App) -> None:
    @app.task(name="reports.nightly")
    def nightly() -> None: ...

    app.schedules.upsert("nightly", "reports.nightly", cron="0 3 * * *", tz="Europe/Prague")
    code, out = _invoke(app, "schedules", "list", "--json")
    assert code == 0
    [row] = json.loads(out)["schedules"]
    assert (row["id"], row["when"], row["tz"], row["origin"]) == (
        "nightly",
        "0 3 * * *",
        "Europe/Prague",
        "operator",
    )
    assert row["next_fire"].endswith(("T02:00:00.000Z", "T01:00:00.000Z")), "in UTC"

    code, out = _invoke(app, "schedules", "list")
    assert "T03:00:00+0" in out, "the table shows fire times in the schedule's zone"

    code, out = _invoke(app, "schedules", "pause", "nightly", "--note", "partner down")
    assert (code, out.strip()) == (0, "paused nightly")
    code, out = _invoke(app, "schedules", "list")
    assert code == 0
    assert "nightly" in out
    assert "True" in out
    assert "partner down" in out
    info = app.schedules.get("nightly")
    assert (info.pause.paused, info.pause.note) == (True, "partner down")

    code, out = _invoke(app, "schedules", "resume", "nightly", "--from", "now")
    assert (code, out.strip()) == (0, "resumed nightly from now")
    assert not app.schedules.get("nightly").pause.paused

    code, out = _invoke(app, "schedules", "trigger", "nightly")
    assert code == 0
    assert out.strip().startswith("nightly@")
    assert app.inspector.queue("default").ready == 1

    code, out = _invoke(app, "schedules", "delete", "nightly")
    assert code == 2, "off a terminal, without --yes: refused"
    assert "add --yes" in out
    assert app.schedules.get("nightly")
    code, out = _invoke(app, "schedules", "delete", "nightly", "--yes")
    assert (code, out.strip()) == (0, "deleted nightly")


def test_an_unknown_schedule_is_one_clear_error_and_exits_1(app: App) -> None:
    code, out = _invoke(app, "schedules", "pause", "nope")
    assert code == 1
    assert "no schedule 'nope'" in out
    assert "Traceback" not in out
    code, out = _invoke(app, "schedules", "list")
    assert code == 0
    assert f"no schedules in namespace {app.namespace!r} at {app.broker_url}" in out
