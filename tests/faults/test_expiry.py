"""Expired results and idempotency records leave Redis soon after their time, at any rate.

Every call that writes results or keys deletes up to twice as many expired ones, and
maintenance runs again at once while it finds more than a pass may handle: so a queue that
keeps thousands of results a second holds about one ttl's worth, not everything since it
started. (benchmarks/expiry.py measures Redis memory under the highest sustained rate.)
"""

from __future__ import annotations

import time
from typing import cast

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers, wait_until

from errands.broker.redis import RedisBroker
from errands.broker.types import Delivery, Outcome

JOBS = 20_000
TTL_S = 1.0  # the result_ttl of `brief`, and the idempotency_ttl of its keys here
MAINTENANCE_S = 5.0  # a worker's maintenance interval


@pytest.mark.timeout(90)
def test_twenty_thousand_results_kept_one_second_are_gone_soon_after(
    server: RedisServer, tasks: FaultTasks, workers: Workers, namespace: str
) -> None:
    keys = cast("RedisBroker", tasks.app.broker).keys("default")
    results, idem = keys.prefix + "results", keys.prefix + "idem"
    signatures = [
        tasks.brief.s(i).set(idempotency_key=f"k{i}", idempotency_ttl=TTL_S) for i in range(JOBS)
    ]
    sent = tasks.app.enqueue_many(signatures)
    workers.start("-c", "2")
    client = server.client()
    wait_until(
        lambda: tasks.app.inspector.queue("default").stats.get("succeeded") == JOBS,
        60,
        "jobs",
    )
    finished = time.monotonic()
    assert sent[-1].get(timeout=5) == JOBS - 1  # kept for one second
    # At most a ttl for the last to expire, and one maintenance interval for a pass to come.
    bound = TTL_S + MAINTENANCE_S + 2
    wait_until(lambda: client.hlen(results) == 0, bound, "every result to expire")
    wait_until(lambda: client.hlen(idem) == 0, bound, "every idempotency record to expire")
    assert client.zcard(keys.prefix + "results_x") == client.zcard(keys.prefix + "idem_x") == 0
    print(f"20,000 results gone {time.monotonic() - finished:.1f}s after the last ack")
    client.close()


async def test_acks_delete_expired_results_as_they_write_new_ones(
    server: RedisServer, tasks: FaultTasks
) -> None:
    broker = cast("RedisBroker", tasks.app.broker)
    results = broker.keys("default").prefix + "results"
    client = server.client()

    async def run_all(count: int) -> None:
        while count > 0:
            fetched = await broker.fetch("default", min(count, 500), 60_000, "w1")
            await broker.ack("default", [_ok(d) for d in fetched.jobs])
            count -= len(fetched.jobs)

    try:
        tasks.app.enqueue_many([tasks.brief.s(i) for i in range(1000)])
        await run_all(1000)
        assert client.hlen(results) == 1000
        server.command("DEBUG", "SLEEP", TTL_S)  # they all expire; no maintenance runs here
        tasks.app.enqueue_many([tasks.brief.s(i) for i in range(600)])
        await run_all(600)
        # 600 written, and up to 1,200 expired ones deleted by the same calls: it shrank.
        assert client.hlen(results) == 600
    finally:
        client.close()
        await broker.aclose()


def _ok(delivery: Delivery) -> Outcome:
    return Outcome(delivery.id, delivery.token, "succeeded", b'{"state":"succeeded","result":0}')
