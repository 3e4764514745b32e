"""How the operator commands print: ISO 8601 times, durations, arguments, whole ids in tables."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from rich.console import Console

from errands.cli_output import Listing, emit_json, human_duration, iso, iso_json, short_call

_ID = "0b6f1f0a-4b8e-4a39-9f53-6c4d0e1f2a3b-retry-7"  # longer than a narrow table's column


def test_times_are_iso_8601_in_utc() -> None:
    epoch = dt.datetime(2026, 5, 1, 9, 30, 12, 345_000, tzinfo=dt.UTC).timestamp()
    assert iso(epoch) == "2026-05-01T09:30:12Z"
    assert iso_json(epoch) == "2026-05-01T09:30:12.345Z"
    prague = dt.datetime(2026, 5, 1, 11, 30, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert iso_json(prague) == "2026-05-01T09:30:12.000Z"
    assert dt.datetime.fromisoformat(iso_json(epoch) or "").timestamp() == pytest.approx(epoch)
    assert (iso(None), iso_json(None)) == ("", None)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0123, "12ms"), (4.25, "4.2s"), (185, "3m 5s"), (7800, "2h 10m"), (349_200, "4d 1h")],
)
def test_durations_read_as_people_say_them(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_arguments_show_as_a_call_shortened() -> None:
    assert short_call([7, "EUR"], {"rush": True}) == "(7, 'EUR', rush=True)"
    assert short_call(None, None) == "()"
    long = short_call(["x" * 500, list(range(100))], {"note": {"a": {"b": {"c": {"d": 1}}}}})
    assert len(long) <= 160
    assert long.startswith("('xxx")
    assert "..." in long


def test_emit_json_prints_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json({"queues": [{"name": "default", "ready": 3}], "at": None})
    assert json.loads(capsys.readouterr().out) == {
        "queues": [{"name": "default", "ready": 3}],
        "at": None,
    }


def _render(listing: Listing, width: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    listing.print(Console(file=out, width=width, color_system=None))
    return out.getvalue().splitlines()


def test_a_table_never_cuts_an_id_or_a_queue_name_even_at_40_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = Listing("job", "queue", "died", "error", wrap=["error"])
    listing.add(_ID, "emails-eu-west-priority", "2026-05-01T09:30:12Z", "KeyError: " + "y " * 40)
    listing.add("[bold]j2[/]", "[q]", "", "")  # brackets are text, not markup
    lines = _render(listing, 40, monkeypatch)
    assert any(_ID in line for line in lines)
    assert any("emails-eu-west-priority" in line for line in lines)
    assert any("2026-05-01T09:30:12Z" in line for line in lines)
    assert any("[bold]j2[/]" in line for line in lines)
    assert not any("…" in line for line in lines)


def test_a_table_that_fits_keeps_to_the_width_and_wraps_only_the_text_column(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = Listing("job", "error", wrap=["error"])
    listing.add("j1", "ValueError: " + "word " * 30)
    lines = _render(listing, 80, monkeypatch)
    assert max(map(len, lines)) <= 80
    assert len(lines) > 5, "the error wraps onto several lines"


def test_a_pipe_without_columns_gets_each_row_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    listing = Listing("job", "error", wrap=["error"])
    listing.add(_ID, "ValueError:" + " word" * 40)
    out = io.StringIO()
    listing.print(Console(file=out, width=80, color_system=None))
    [row] = [line for line in out.getvalue().splitlines() if _ID in line]
    assert row.rstrip().endswith("word │")
