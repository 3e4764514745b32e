"""How the operator commands print: JSON documents, ISO 8601 times, tables that never cut an id.

Every read command prints either a table (people) or, with ``--json``, one JSON document
(scripts): times in it are ISO 8601 strings in UTC, durations numbers of seconds. A table shows
ids and queue names whole whatever the width: a row that cannot fit the terminal is wider than
it (the terminal wraps it) rather than cut; in a pipe with no ``COLUMNS`` each row is one line.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import reprlib
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

__all__ = [
    "Listing",
    "confirm_or_refuse",
    "console",
    "emit_json",
    "human_duration",
    "iso",
    "iso_json",
    "short_call",
    "time_option",
]

#: Where tables and reports go: standard output.
console = Console(highlight=False)

# A pipe without COLUMNS gets each row on one line (whole lines are what grep finds); this is
# only a bound on what a row may need.
_UNBOUNDED = 100_000

_arguments = reprlib.Repr()
_arguments.maxstring = 40
_arguments.maxother = 40
_arguments.maxlist = _arguments.maxtuple = _arguments.maxdict = 5
_arguments.maxlevel = 3
# The narrowest a wrapping column gets: words of an error message stay readable.
_WRAPPED_MIN = 16
#: Characters of a job's arguments a report shows (``--json`` shows them whole).
MAX_ARGUMENTS = 160


def iso(epoch: float | None) -> str:
    """A time for a table: ``2026-05-01T09:30:12Z`` (UTC, whole seconds); "" for None."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_json(moment: float | dt.datetime | None) -> str | None:
    """A time for JSON: ``2026-05-01T09:30:12.345Z`` (UTC, milliseconds); None stays None.

    Args:
        moment: Unix seconds, or an aware datetime.
    """
    if moment is None:
        return None
    when = (
        moment.astimezone(dt.UTC)
        if isinstance(moment, dt.datetime)
        else dt.datetime.fromtimestamp(moment, dt.UTC)
    )
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_duration(seconds: float | None) -> str:
    """A duration as people read it: 12ms, 4.2s, 3m 5s, 2h 10m, 4d 1h; "" for None."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    for unit, size, smaller, small_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{unit} {whole % size // small_size}{smaller}"
    return f"{whole // 60}m {whole % 60}s"


def short_call(args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None) -> str:
    """A job's arguments as a call shows them, shortened: ``(7, 'EUR', rush=True)``."""
    parts = [_arguments.repr(a) for a in args or ()]
    parts += [f"{k}={_arguments.repr(v)}" for k, v in (kwargs or {}).items()]
    shown = f"({', '.join(parts)})"
    return shown if len(shown) <= MAX_ARGUMENTS else shown[: MAX_ARGUMENTS - 4] + "...)"


def emit_json(document: Any) -> None:
    """Print `document` as one JSON document (indented), on standard output."""
    click.echo(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())


def confirm_or_refuse(question: str, yes: bool) -> None:
    """Go on only when `yes`, or when the operator answers yes on a terminal.

    Off a terminal without `yes` nobody can answer: say so and exit 2, changing nothing.
    A "no" on the terminal exits 1, changing nothing.
    """
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(
            f"error: refusing to {question} without confirmation: not on a terminal, so add "
            "--yes to go ahead",
            err=True,
        )
        sys.exit(2)
    if not click.confirm(f"{question[0].upper()}{question[1:]}?", default=False):
        click.echo("nothing changed", err=True)
        sys.exit(1)


class Listing:
    """A table that never cuts an id: every column but the `wrap` ones shows its cells whole.

    Ids, queue names, times and counts are never cut, folded or shortened; only the `wrap`
    columns (error messages, notes) wrap, at words.

    Args:
        headers: the column headers, in order.
        wrap: the headers of the columns that may wrap.
        title: shown above the table.
    """

    def __init__(self, *headers: str, wrap: Collection[str] = (), title: str | None = None) -> None:
        self.headers = headers
        self.wrap = set(wrap)
        self.title = title
        self.rows: list[tuple[str, ...]] = []

    def add(self, *cells: str) -> None:
        """Add a row: one text per header."""
        self.rows.append(cells)

    def table(self) -> Table:
        """The rich table: each whole column as wide as its widest cell, never wrapped."""
        columns = []
        for index, header in enumerate(self.headers):
            if header in self.wrap:
                columns.append(Column(header, overflow="fold", min_width=_WRAPPED_MIN))
            else:
                widest = max([len(header), *(len(row[index]) for row in self.rows)])
                columns.append(Column(header, no_wrap=True, min_width=widest))
        table = Table(*columns, title=self.title)
        for row in self.rows:
            # Text, not markup: a queue name or an error message may hold [brackets].
            table.add_row(*(Text(cell) for cell in row))
        return table

    def print(self, out: Console | None = None) -> None:
        """Print it as wide as the output, or wider when its whole columns need more."""
        out = out or console
        table = self.table()
        unbounded = not out.is_terminal and "COLUMNS" not in os.environ
        measured = Measurement.get(out, out.options.update(max_width=_UNBOUNDED), table)
        width = measured.maximum if unbounded else max(out.width, measured.minimum)
        if width == out.width:
            out.print(table)
            return
        wide = Console(
            file=out.file,
            width=width,
            force_terminal=out.is_terminal,
            color_system="auto" if out.color_system else None,
            highlight=False,
        )
        wide.print(table)


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def time_option(value: str | None) -> float | None:
    """A time given as an age (``30m``, ``2h``, ``1d``: that long ago) or ISO 8601 (UTC)."""
    if value is None:
        return None
    found = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if found:
        return time.time() - int(found[1]) * _AGE_UNITS[found[2]]
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither an age (30m, 2h, 1d) nor a date (2026-12-01T09:30)"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
