"""The throughput series on real Redis: a worker samples it, and it counts exactly what ran.

The conformance suite (``errands.conformance.series``) holds both brokers to the arithmetic
with given times; these tests add what only Redis and a real worker can show: the worker's own
samples, and records someone overwrote.
"""

from __future__ import annotations

import time

import pytest
import redis

from errands.broker.redis import RedisBroker
from errands.broker.redis.series import series_keys
from errands.broker.series import SERIES_KEEP_S, ThroughputPoint, minute_of
from errands.errors import JobFailed
from tests.integration.worker_app import Tasks
from tests.integration.workers import Workers, wait_until

_A = 1_700_000_040  # a minute's start, for the tests that give the time


def _broker(tasks: Tasks) -> RedisBroker:
    broker = tasks.app.broker
    assert isinstance(broker, RedisBroker)
    return broker


@pytest.mark.timeout(60)
def test_a_worker_samples_its_queue_and_the_series_counts_exactly_the_jobs_it_ran(
    tasks: Tasks, workers: Workers, redis_url: str, namespace: str
) -> None:
    broker = _broker(tasks)
    series = redis.Redis.from_url(redis_url)
    try:
        workers.start("-c", "2")
        key = series_keys(namespace, "default")[1]
        # The worker's first maintenance pass samples the queue, before any job was sent.
        wait_until(lambda: series.hlen(key) > 0, 10, "the worker's first sample")
        done = [tasks.mark.delay(f"m{i}") for i in range(3)]
        retried = tasks.picky.delay("TimeoutError")  # retried once, then succeeds
        refused = tasks.picky.delay("PermissionError")  # dies at once
        for job in done:
            job.get(timeout=10)
        assert retried.get(timeout=10) == 2
        with pytest.raises(JobFailed):
            refused.get(timeout=10)
        # Close the minute under way as the next minute's first sample would.
        later = time.time() + 60
        broker.sample_throughput("default", now=later)
        points = broker.inspector.throughput("default", 3, until=later)
    finally:
        series.close()
    known = [p for p in points if p.enqueued is not None]
    assert known, f"the minutes since the worker's first sample are known: {points}"
    totals = [sum(getattr(p, f) or 0 for p in known) for f in ThroughputPoint.__struct_fields__[1:]]
    assert totals == [5, 4, 1, 1], f"enqueued, succeeded, retried, dead: {points}"


def test_a_corrupt_sample_is_a_gap_and_a_series_of_the_wrong_type_starts_again(
    tasks: Tasks, redis_url: str, namespace: str
) -> None:
    broker = _broker(tasks)
    key = series_keys(namespace, "default")[1]
    plain = redis.Redis.from_url(redis_url)
    try:
        plain.hset(key, str(_A), "not a sample")
        assert broker.sample_throughput("default", now=_A + 60).written
        assert broker.inspector.throughput("default", 1, until=_A + 60) == [
            ThroughputPoint(_A, None, None, None, None)
        ], "a sample that cannot be read makes its minutes gaps"
        plain.delete(key)
        plain.set(key, "overwritten")
        assert broker.inspector.throughput("default", 2, until=_A)[0].enqueued is None
        assert broker.sample_throughput("default", now=_A).written, "the series starts again"
        assert plain.type(key) == b"hash"
        ttl = plain.ttl(key)
        assert SERIES_KEEP_S < ttl <= SERIES_KEEP_S + 60, "an abandoned series expires"
    finally:
        plain.close()


def test_the_series_of_a_queue_nobody_sampled_is_all_gaps_up_to_now(tasks: Tasks) -> None:
    broker = _broker(tasks)
    points = broker.inspector.throughput("never-used", 60)
    assert len(points) == 60
    assert all(p.enqueued is None for p in points)
    now_minute = minute_of(time.time() * 1000)
    assert points[-1].minute in (now_minute - 60, now_minute), "ending before the minute under way"
