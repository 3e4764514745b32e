"""Any number of jobs in one call, chords included; a call Redis refuses halfway leaves no wreck.

The client sends big batches in calls of a few hundred jobs, each all or nothing: before, one
call of over ~4,000 jobs failed inside Lua after it had written the idempotency records, and
for a day those keys answered as duplicates of jobs that never existed. A bulk call refused
halfway (a full Redis) says which jobs are in, and sending it again adds only the rest.
"""

from __future__ import annotations

from typing import cast

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers

from errands import BrokerError, BrokerFull, chord, group
from errands.broker.redis import RedisBroker, calls
from errands.broker.types import NewJob

MANY = 4_100
# 200 jobs cost a queue about 110 kB once its keys exist: this leaves room for two calls or so.
ROOM_FOR_A_FEW_CALLS = 250_000


def _used(server: RedisServer) -> int:
    client = server.client()
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


def test_one_call_of_thousands_of_jobs_with_keys_enqueues_every_one(
    server: RedisServer, tasks: FaultTasks
) -> None:
    broker = cast("RedisBroker", tasks.app.broker)
    jobs = [NewJob(id=f"j{i}", payload=b"{}", idempotency_key=f"k{i}") for i in range(MANY)]
    answers = broker.enqueue("default", jobs)
    assert [a.id for a in answers] == [j.id for j in jobs]
    assert all(a.created for a in answers)
    assert broker.inspector.queue("default").ready == MANY
    again = broker.enqueue("default", [NewJob(id=f"x{i}", payload=b"{}", idempotency_key=f"k{i}")
                                        for i in range(MANY)])  # fmt: skip
    assert [a.id for a in again] == [j.id for j in jobs]  # each key still held by its job


def test_the_library_refuses_a_call_over_its_batch_bound_before_it_writes(
    server: RedisServer, tasks: FaultTasks
) -> None:
    broker = cast("RedisBroker", tasks.app.broker)
    broker.load_library()
    jobs = [NewJob(id=f"j{i}", payload=b"{}", idempotency_key=f"k{i}") for i in range(1001)]
    raw = calls.enqueue(broker.keys("default"), jobs).packed()
    client = server.client()
    with pytest.raises(Exception, match="at most 1000 jobs per call"):
        client.execute_command(*_split(raw))  # type: ignore[no-untyped-call]
    prefix = broker.keys("default").prefix
    assert client.exists(prefix + "idem", prefix + "jobs", prefix + "meta", prefix + "ready") == 0
    client.close()


def _split(packed: bytes) -> list[bytes]:
    """The arguments of one command in the Redis protocol (bulk strings only)."""
    parts = packed.split(b"\r\n")
    return [parts[i] for i in range(2, len(parts) - 1, 2)]


@pytest.mark.timeout(90)
def test_a_chord_of_thousands_of_members_calls_back_with_every_result(
    tasks: FaultTasks, workers: Workers
) -> None:
    workers.start("-c", "2")
    sent = chord([tasks.add.s(i, 0) for i in range(MANY)], tasks.mark.partial()).delay()
    # `mark` returns its label: here the list of every member's result, in order.
    called_back: object = sent.get(timeout=60)
    assert called_back == list(range(MANY))


def test_a_bulk_call_refused_halfway_says_which_jobs_are_in_and_a_resend_adds_the_rest(
    server: RedisServer, tasks: FaultTasks
) -> None:
    broker = cast("RedisBroker", tasks.app.broker)
    broker.load_library()
    signatures = [
        tasks.echo.s(i, 0).set(idempotency_key=f"order-{i}", job_id=f"job-{i}") for i in range(2000)
    ]
    tasks.app.enqueue_many(signatures[:200])  # the queue's keys exist: memory grows evenly
    server.command("CONFIG", "SET", "maxmemory", _used(server) + ROOM_FOR_A_FEW_CALLS)
    try:
        with pytest.raises(BrokerFull) as refused:
            tasks.app.enqueue_many(signatures)
    finally:
        server.command("CONFIG", "SET", "maxmemory", 0)
    taken = {h.id for h in refused.value.enqueued}
    assert 0 < len(taken) < 2000
    client = server.client()
    prefix = broker.keys("default").prefix
    jobs: list[bytes] = client.hkeys(prefix + "jobs")  # type: ignore[assignment]
    assert {k.decode() for k in jobs} == taken  # whole jobs only
    held: list[bytes] = client.hvals(prefix + "idem")  # type: ignore[assignment]
    holders = {v.decode() for v in held}
    assert holders == taken  # no key held for a job that does not exist
    again = tasks.app.enqueue_many(signatures)
    assert [h.id for h in again] == [f"job-{i}" for i in range(2000)]
    assert broker.inspector.queue("default").ready == 2000
    client.close()


def test_a_group_refused_halfway_raises_an_errands_error_listing_what_was_sent(
    server: RedisServer, tasks: FaultTasks
) -> None:
    group(*[tasks.echo.s(i, 0) for i in range(200)]).delay()
    server.command("CONFIG", "SET", "maxmemory", _used(server) + ROOM_FOR_A_FEW_CALLS)
    try:
        with pytest.raises(BrokerError, match="maxmemory") as refused:
            group(*[tasks.echo.s(i, 0) for i in range(3000)]).delay()
    finally:
        server.command("CONFIG", "SET", "maxmemory", 0)
    assert refused.value.enqueued, "the calls before the refused one went in"
    assert tasks.app.inspector.queue("default").ready == 200 + len(refused.value.enqueued)
