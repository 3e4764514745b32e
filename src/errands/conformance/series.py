"""Checks of the throughput series: per-minute counts from samples, written once, kept 2 hours.

The checks file samples under given times (``now=``) and read under given times
(``until=``), so they need no clock of the broker's and no waiting for minutes to pass.
"""

from __future__ import annotations

from errands.broker.series import SERIES_KEEP_S, ThroughputPoint
from errands.conformance.jobs import Q, fail, job, ok, retry, take
from errands.conformance.subject import Check, Subject
from errands.errors import ArgumentError

__all__ = ["CHECKS"]

# A minute's start (Unix seconds), far from the brokers' own time: only given times matter.
_A = 1_700_000_040


def _gap(minute: int) -> ThroughputPoint:
    return ThroughputPoint(minute, None, None, None, None)


async def check_the_series_counts_the_jobs_of_each_minute(s: Subject) -> None:
    """A minute's counts are the difference of its sample and the next minute's."""
    b = s.broker
    assert b.sample_throughput(Q, now=_A + 5).written, "the first sample of a minute writes"
    b.enqueue(Q, [job(f"j{i}", max_attempts=2) for i in range(4)])
    first = await take(b, 4)
    assert len(first) == 4, f"four jobs to run: {first}"
    await b.ack(Q, [ok(first[0]), ok(first[1]), retry(first[2]), fail(first[3])])
    sampled = await b.asample_throughput(Q, now=_A + 61.5)
    assert sampled.written, "the next minute's first sample writes"
    assert sampled.next_in_s == 58.5, f"it says when the minute after starts: {sampled}"
    points = b.inspector.throughput(Q, 3, until=_A + 90)
    assert points == [
        _gap(_A - 120),
        _gap(_A - 60),
        ThroughputPoint(_A, enqueued=4, succeeded=2, retried=1, dead=1),
    ], f"one minute counted, the ones before are gaps: {points}"
    assert await b.inspector.athroughput(Q, 1, until=_A + 90) == points[-1:], "async twin"
    assert b.inspector.throughput(Q, 1, until=_A + 150) == [_gap(_A + 60)], (
        "a minute whose end has no sample yet is a gap"
    )


async def check_a_minute_is_sampled_once_however_many_samplers(s: Subject) -> None:
    """Two samplers in one minute: the first writes, the second changes nothing."""
    b = s.broker
    assert b.sample_throughput(Q, now=_A + 1).written, "the first sampler writes"
    b.enqueue(Q, [job("late")])
    second = b.sample_throughput(Q, now=_A + 30)
    assert not second.written, "a second sampler of the same minute writes nothing"
    assert second.next_in_s == 30, f"and learns when the next minute starts: {second}"
    b.sample_throughput(Q, now=_A + 60)
    [point] = b.inspector.throughput(Q, 1, until=_A + 60)
    assert point.enqueued == 1, f"the job sent after the first sample counts in it: {point}"


async def check_samples_older_than_two_hours_are_dropped(s: Subject) -> None:
    """A sample that writes drops those more than `SERIES_KEEP_S` older than it."""
    b = s.broker
    b.sample_throughput(Q, now=_A)
    b.enqueue(Q, [job("one")])
    b.sample_throughput(Q, now=_A + 60)
    b.sample_throughput(Q, now=_A + 120)
    assert b.inspector.throughput(Q, 2, until=_A + 120)[0].enqueued == 1, "kept while young"
    b.sample_throughput(Q, now=_A + SERIES_KEEP_S)
    points = b.inspector.throughput(Q, 2, until=_A + 120)
    assert points == [_gap(_A), ThroughputPoint(_A + 60, 0, 0, 0, 0)], (
        f"the sample of two hours before is dropped, the ones after it kept: {points}"
    )
    try:
        b.inspector.throughput(Q, 121)
    except ArgumentError:
        pass
    else:
        raise AssertionError("more minutes than two hours hold is refused")


CHECKS: tuple[Check, ...] = (
    check_the_series_counts_the_jobs_of_each_minute,
    check_a_minute_is_sampled_once_however_many_samplers,
    check_samples_older_than_two_hours_are_dropped,
)
