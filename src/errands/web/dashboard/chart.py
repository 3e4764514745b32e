"""The overview's throughput chart: per-minute counts drawn as inline SVG bars (pure).

`bars` turns a queue's per-minute series into the geometry the template draws; `totals` sums
an hour of it, the failure rate included. Nothing here reads Redis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import msgspec

__all__ = ["Bar", "Chart", "Minute", "MinuteCounts", "chart", "empty_series"]

#: The chart's drawing size, in SVG user units.
WIDTH = 600
HEIGHT = 120


class Minute(Protocol):
    """What the chart reads of one minute of a queue's series."""

    @property
    def minute(self) -> float:
        """The minute's start (Unix seconds)."""
        ...

    @property
    def succeeded(self) -> int:
        """Jobs that succeeded in it."""
        ...

    @property
    def dead(self) -> int:
        """Jobs that failed for good in it."""
        ...

    @property
    def enqueued(self) -> int:
        """Jobs sent in it."""
        ...

    @property
    def retried(self) -> int:
        """Attempts that failed and were retried in it."""
        ...


class MinuteCounts(msgspec.Struct, frozen=True):
    """One minute of a queue's work (the shape of ``Inspector.throughput``'s records).

    Attributes:
        minute: the minute's start (Unix seconds).
        enqueued: jobs sent in it.
        succeeded: jobs that succeeded in it.
        retried: attempts that failed and were retried in it.
        dead: jobs that failed for good in it.
    """

    minute: float
    enqueued: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0


def empty_series(minutes: int = 60, now: float | None = None) -> list[MinuteCounts]:
    """An hour with nothing counted: what the chart draws for a broker without a series."""
    start = (int(time.time() if now is None else now) // 60 - minutes + 1) * 60
    return [MinuteCounts(float(start + 60 * i)) for i in range(minutes)]


class Bar(msgspec.Struct, frozen=True):
    """One minute's bar: its succeeded part below, its dead part on top.

    Attributes:
        x: its left edge.
        width: its width.
        ok_y: the top of the succeeded part.
        ok_height: the succeeded part's height.
        dead_y: the top of the dead part.
        dead_height: the dead part's height.
        label: the tooltip (minute and counts).
    """

    x: float
    width: float
    ok_y: float
    ok_height: float
    dead_y: float
    dead_height: float
    label: str


class Chart(msgspec.Struct, frozen=True):
    """A queue's hour, ready to draw.

    Attributes:
        bars: one per minute, oldest first.
        succeeded: jobs that succeeded in the hour.
        dead: jobs that failed for good in the hour.
        enqueued: jobs sent in the hour.
        retried: retried attempts in the hour.
        failure_rate: dead / (succeeded + dead), None when nothing finished.
        peak: the tallest minute (finished jobs), the chart's scale.
    """

    bars: list[Bar]
    succeeded: int
    dead: int
    enqueued: int
    retried: int
    failure_rate: float | None
    peak: int


def chart(series: Sequence[Minute]) -> Chart:
    """The chart of `series` (per-minute records, oldest first)."""
    peak = max([m.succeeded + m.dead for m in series] + [1])
    slot = WIDTH / max(len(series), 1)
    bars = []
    for index, m in enumerate(series):
        ok = HEIGHT * m.succeeded / peak
        bad = HEIGHT * m.dead / peak
        stamp = time.strftime("%H:%M", time.gmtime(m.minute))
        bars.append(
            Bar(
                x=round(index * slot + 0.5, 2),
                width=round(max(slot - 1.0, 1.0), 2),
                ok_y=round(HEIGHT - ok, 2),
                ok_height=round(ok, 2),
                dead_y=round(HEIGHT - ok - bad, 2),
                dead_height=round(bad, 2),
                label=f"{stamp}Z: {m.succeeded} succeeded, {m.dead} dead, {m.enqueued} sent",
            )
        )
    succeeded = sum(m.succeeded for m in series)
    dead = sum(m.dead for m in series)
    finished = succeeded + dead
    return Chart(
        bars=bars,
        succeeded=succeeded,
        dead=dead,
        enqueued=sum(m.enqueued for m in series),
        retried=sum(m.retried for m in series),
        failure_rate=dead / finished if finished else None,
        peak=peak,
    )
