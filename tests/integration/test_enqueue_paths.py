"""The enqueue function has a path for one job and one for a batch: they must write the same state.

The same jobs go to one queue one call each, and to another queue in one call; every key of the
two queues is then read back and compared.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from errands.broker.redis.broker import RedisBroker
from errands.broker.types import Enqueued, NewJob

pytestmark = pytest.mark.redis

# Positions in the queue's key list (00_shared.lua), and how to read each key.
_KEYS = {
    "ready": (0, "zset"),
    "delayed": (1, "zset_time"),
    "jobs": (4, "hash"),
    "meta": (5, "hash"),
    "results": (6, "hash"),
    "idem": (8, "hash"),
    "idem_x": (9, "zset_time"),
    "seq": (11, "string"),
    "stats": (12, "hash"),
}
_WAKE = 10
_CLOCK_SLACK_MS = 5_000  # the two queues are filled a few ms apart; due times follow the clock


def _jobs() -> list[NewJob]:
    def make(job_id: str, **options: Any) -> NewJob:
        return NewJob(id=job_id, payload=f"payload of {job_id}".encode(), **options)

    return [
        make("plain"),
        make("urgent", priority=9),
        make("later", delay_ms=60_000),
        make("keyed", idempotency_key="welcome:42", idempotency_ttl_ms=60_000),
        make("keyed-again", idempotency_key="welcome:42", idempotency_ttl_ms=60_000),
        make("until", idempotency_key="sync", idempotency_mode="until_finished", priority=3),
        make("plain"),
        make("quiet", ignore_result=True, max_attempts=1, result_ttl_ms=5_000, max_stalls=3),
        make("later-keyed", delay_ms=30_000, idempotency_key="remind:7"),
    ]


def _read(client: redis.Redis, key: str, kind: str) -> Any:
    if kind == "hash":
        return client.hgetall(key)
    if kind == "string":
        return client.get(key)
    pairs: list[Any] = list(client.zrange(key, 0, -1, withscores=True))
    if kind == "zset":
        return pairs
    return dict(pairs)  # scores from the clock: two members may swap places when they tie


def test_one_job_at_a_time_and_a_batch_write_the_same_state(
    broker: RedisBroker, client: redis.Redis
) -> None:
    alone = [broker.enqueue("alone", [job])[0] for job in _jobs()]
    batch = broker.enqueue("batch", _jobs())

    assert alone == batch
    assert [e.created for e in alone] == [True, True, True, True, False, True, False, True, True]
    assert alone[4] == Enqueued("keyed", created=False)
    for name, (position, kind) in _KEYS.items():
        mine = _read(client, broker.keys("alone").all[position], kind)
        theirs = _read(client, broker.keys("batch").all[position], kind)
        if kind == "zset_time":
            assert mine.keys() == theirs.keys(), name
            assert all(abs(mine[k] - theirs[k]) < _CLOCK_SLACK_MS for k in mine), name
        else:
            assert mine == theirs, name
        assert mine or name == "results", f"{name} is empty"
    # A batch wakes up to 8 idle workers, one job one.
    assert client.zrange(broker.keys("alone").all[_WAKE], 0, -1) == [b"1"]
    assert len(client.zrange(broker.keys("batch").all[_WAKE], 0, -1)) == 7
