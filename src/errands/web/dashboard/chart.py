"""The throughput chart: a queue's per-minute counts drawn as inline SVG bars (pure).

`chart` turns a series (`errands.broker.series.ThroughputPoint`, oldest first) into what the
template draws, with the hour's sums and failure rate; `summed` adds several queues' series.
A minute nobody sampled is a gap: drawn as a hatch mark, counted as nothing. Nothing here
reads Redis.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec

from errands.broker.series import ThroughputPoint

__all__ = ["HEIGHT", "WIDTH", "Bar", "Chart", "chart", "summed"]

#: The chart's drawing size, in SVG user units.
WIDTH = 600
HEIGHT = 120


class Bar(msgspec.Struct, frozen=True):
    """One minute's bar: its succeeded part below, its dead part on top.

    Attributes:
        x: its left edge.
        width: its width.
        ok_y: the top of the succeeded part.
        ok_height: the succeeded part's height.
        dead_y: the top of the dead part.
        dead_height: the dead part's height.
        gap: nobody sampled the minute: its counts are unknown.
        label: the tooltip (the minute and its counts).
    """

    x: float
    width: float
    ok_y: float
    ok_height: float
    dead_y: float
    dead_height: float
    gap: bool
    label: str


class Chart(msgspec.Struct, frozen=True):
    """A queue's hour, ready to draw.

    Attributes:
        bars: one per minute, oldest first.
        succeeded: jobs that succeeded in the minutes known.
        dead: jobs that failed for good in the minutes known.
        enqueued: jobs sent in the minutes known.
        retried: retried attempts in the minutes known.
        failure_rate: dead / (succeeded + dead), None when nothing finished.
        peak: the tallest minute (finished jobs): the chart's scale.
        gaps: minutes nobody sampled.
    """

    bars: list[Bar]
    succeeded: int
    dead: int
    enqueued: int
    retried: int
    failure_rate: float | None
    peak: int
    gaps: int


def _n(value: int | None) -> int:
    return value or 0


def chart(series: Sequence[ThroughputPoint]) -> Chart:
    """The chart of `series` (per-minute points, oldest first)."""
    peak = max([_n(p.succeeded) + _n(p.dead) for p in series] + [1])
    slot = WIDTH / max(len(series), 1)
    bars = []
    for index, p in enumerate(series):
        ok = HEIGHT * _n(p.succeeded) / peak
        bad = HEIGHT * _n(p.dead) / peak
        stamp = time.strftime("%H:%M", time.gmtime(p.minute))
        gap = p.succeeded is None
        said = (
            "no sample"
            if gap
            else f"{p.succeeded} succeeded, {p.dead} dead, {p.retried} retried, {p.enqueued} sent"
        )
        bars.append(
            Bar(
                x=round(index * slot + 0.5, 2),
                width=round(max(slot - 1.0, 1.0), 2),
                ok_y=round(HEIGHT - ok, 2),
                ok_height=round(ok, 2),
                dead_y=round(HEIGHT - ok - bad, 2),
                dead_height=round(bad, 2),
                gap=gap,
                label=f"{stamp}Z: {said}",
            )
        )
    succeeded = sum(_n(p.succeeded) for p in series)
    dead = sum(_n(p.dead) for p in series)
    finished = succeeded + dead
    return Chart(
        bars=bars,
        succeeded=succeeded,
        dead=dead,
        enqueued=sum(_n(p.enqueued) for p in series),
        retried=sum(_n(p.retried) for p in series),
        failure_rate=dead / finished if finished else None,
        peak=peak,
        gaps=sum(1 for p in series if p.succeeded is None),
    )


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else _n(a) + _n(b)


def summed(series: Sequence[Sequence[ThroughputPoint]]) -> list[ThroughputPoint]:
    """The per-minute sums of several queues' series; a minute is a gap only where all are."""
    totals: dict[int, ThroughputPoint] = {}
    for one in series:
        for p in one:
            seen = totals.get(p.minute)
            if seen is None:
                totals[p.minute] = p
                continue
            totals[p.minute] = ThroughputPoint(
                p.minute,
                _add(seen.enqueued, p.enqueued),
                _add(seen.succeeded, p.succeeded),
                _add(seen.retried, p.retried),
                _add(seen.dead, p.dead),
            )
    return [totals[minute] for minute in sorted(totals)]
