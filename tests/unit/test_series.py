"""The throughput series' arithmetic (`errands.broker.series`): gaps, resets, encoding."""

from __future__ import annotations

import pytest

from errands.broker.series import (
    ThroughputPoint,
    check_minutes,
    decode_sample,
    encode_sample,
    minute_of,
    throughput_points,
)
from errands.errors import ArgumentError


def test_a_sample_keeps_the_four_counters_in_order_and_reads_back() -> None:
    raw = encode_sample({"failed": 1, "enqueued": 9, "succeeded": 7, "retried": 2, "lost": 5})
    assert raw == b"9 7 2 1"
    assert decode_sample(raw) == (9, 7, 2, 1)
    assert decode_sample(encode_sample({})) == (0, 0, 0, 0)


@pytest.mark.parametrize("raw", [None, False, b"", b"1 2 3", b"1 2 x 4", b"1 2 3 -4", 17])
def test_a_sample_that_cannot_be_read_is_none(raw: object) -> None:
    assert decode_sample(raw) is None


def test_a_minute_between_two_samples_counts_their_difference() -> None:
    points = throughput_points(180, [b"0 0 0 0", b"5 3 1 1", b"5 5 1 1", b"9 5 1 1"][1:])
    assert points == [ThroughputPoint(60, 0, 2, 0, 0), ThroughputPoint(120, 4, 0, 0, 0)]


def test_a_missing_sample_makes_the_minutes_on_both_sides_gaps_not_zeros() -> None:
    points = throughput_points(180, [b"1 1 0 0", None, b"3 3 0 0", b"4 4 0 0"])
    assert [p.enqueued for p in points] == [None, None, 1]
    assert [p.minute for p in points] == [0, 60, 120]


def test_a_counter_that_went_down_was_reset_and_counts_from_zero() -> None:
    [point] = throughput_points(60, [b"100 90 5 5", b"3 2 0 1"])
    assert point == ThroughputPoint(0, 3, 2, 0, 1), "never a negative rate"


def test_minutes_are_whole_and_reads_are_bounded_to_two_hours() -> None:
    assert minute_of(119_999) == 60
    assert minute_of(120_000) == 120
    assert check_minutes(120) == 120
    for wrong in (0, 121):
        with pytest.raises(ArgumentError, match="between 1 and 120"):
            check_minutes(wrong)
