"""The dashboard's throughput chart: bars scaled to the busiest minute, gaps drawn as gaps."""

from __future__ import annotations

from errands.broker.series import ThroughputPoint
from errands.web.dashboard.chart import HEIGHT, chart, summed


def test_bars_scale_to_the_busiest_minute_and_the_rate_counts_dead_over_finished() -> None:
    drawn = chart(
        [
            ThroughputPoint(0, 10, 8, 1, 2),
            ThroughputPoint(60, 5, 5, 0, 0),
            ThroughputPoint(120, None, None, None, None),
        ]
    )
    busiest, quiet, gap = drawn.bars
    assert busiest.ok_height + busiest.dead_height == HEIGHT
    assert quiet.ok_height == HEIGHT / 2
    assert (gap.gap, gap.ok_height, gap.dead_height) == (True, 0, 0)
    assert "no sample" in gap.label
    assert (drawn.succeeded, drawn.dead, drawn.enqueued, drawn.retried) == (13, 2, 15, 1)
    assert drawn.failure_rate == 2 / 15
    assert drawn.gaps == 1


def test_an_hour_with_nothing_finished_has_no_failure_rate() -> None:
    drawn = chart([ThroughputPoint(0, 3, 0, 0, 0)])
    assert drawn.failure_rate is None
    assert drawn.bars[0].ok_height == 0
    assert chart([]).bars == []


def test_summed_queues_are_a_gap_only_where_every_queue_is() -> None:
    first = [ThroughputPoint(0, 1, 1, 0, 0), ThroughputPoint(60, None, None, None, None)]
    second = [ThroughputPoint(0, 2, 1, 1, 1), ThroughputPoint(60, 4, 4, 0, 0)]
    gone = [ThroughputPoint(60, None, None, None, None)]
    assert summed([first, second, gone]) == [
        ThroughputPoint(0, 3, 2, 1, 1),
        ThroughputPoint(60, 4, 4, 0, 0),
    ]
    assert summed([gone])[0].succeeded is None
