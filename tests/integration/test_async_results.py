"""`aget()` on a real Redis: subscriber connections are kept between waits, never mixed up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis

from errands.broker.redis import RedisBroker
from errands.broker.types import Lease, NewJob, Outcome
from errands.result import OutcomeRecord

Q = "results"


@pytest.fixture
async def abroker(broker: RedisBroker) -> AsyncIterator[RedisBroker]:
    yield broker
    await broker.aclose()


async def _finish(broker: RedisBroker, job_id: str, value: int) -> None:
    """Lease `job_id` (the next job of the queue) and acknowledge it with `value`."""
    fetched = await broker.fetch(Q, 1, 30_000, "test-worker")
    (delivery,) = fetched.jobs
    assert delivery.id == job_id
    lease = Lease(delivery.id, delivery.token)
    record = OutcomeRecord("succeeded", value, attempts=1, finished_at=0.0)
    outcome = Outcome(lease.id, lease.token, "succeeded", msgspec.json.encode(record), 0)
    await broker.ack(Q, [outcome])


def _connections_received(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


async def test_waits_one_after_another_reuse_one_subscriber_connection(
    abroker: RedisBroker, redis_url: str
) -> None:
    abroker.enqueue(Q, [NewJob(id=f"j{i}", payload=b"{}") for i in range(20)])
    await abroker.await_result(Q, "j0", 0.01)  # opens what the waits need
    before = _connections_received(redis_url)
    for i in range(20):
        await _finish(abroker, f"j{i}", i)
        state = await abroker.await_result(Q, f"j{i}", 10)
        assert state.state == "succeeded"
    # One for the counting client itself; a connection per wait would add twenty.
    assert _connections_received(redis_url) - before <= 2


async def test_concurrent_waits_each_get_their_own_job(abroker: RedisBroker) -> None:
    ids = [f"c{i}" for i in range(6)]
    abroker.enqueue(Q, [NewJob(id=job_id, payload=b"{}") for job_id in ids])
    for round_ in range(2):  # the second runs on kept connections, with old subscriptions
        waits = [asyncio.create_task(abroker.await_result(Q, job_id, 10)) for job_id in ids]
        await asyncio.sleep(0)
        if round_ == 0:
            for index, job_id in enumerate(ids):
                await _finish(abroker, job_id, index)
        states = await asyncio.gather(*waits)
        values = [_value(state.outcome) for state in states]
        assert values == list(range(6))


def _value(outcome: bytes | None) -> int:
    assert outcome is not None
    value: int = msgspec.json.decode(outcome, type=OutcomeRecord).result
    return value
