"""Leases under faults: renewals that cross a refetch, late successes, kills, lost replies.

- A heartbeat in flight never drops the lease of the same job fetched again meanwhile: only
  the lease it renewed can be lost.
- A job whose lease ran out while its worker was frozen, and that nobody took since, keeps the
  success its worker reports late: it does not run again.
- A job that was only queued in a worker that got killed is charged nothing; the one it was
  running is charged a stall each time, and ends dead (poison) with its attempts, deliveries
  and time recorded.
- A fetch whose reply was lost (Redis ran it) is never sent again blindly, which would lease a
  second batch while the first waits out its lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Collection, Sequence
from typing import cast

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.probes import wait_seen_running
from tests.faults.servers import DroppingProxy, RedisServer
from tests.integration.workers import Events, Workers

from errands import BrokerUnavailable
from errands.broker.redis import RedisBroker
from errands.broker.types import AckCode, HeartbeatReply, Lease, NewJob, Outcome
from errands.worker.config import WorkerConfig
from errands.worker.ledger import Ledger
from errands.worker.outage import Outage
from errands.worker.pool import Pool
from errands.worker.queues import QueueSelection
from errands.worker.upkeep import Upkeep

ONE_S_LEASE = ("--lease", "1")
ONE_S_ENV = {"ERRANDS_TEST_LEASE": "1"}


class _NoPool:
    """What the heartbeat asks of a pool, for a test that holds its jobs by hand."""

    def started(self) -> set[str]:
        return set()

    def cancel(self, job_ids: Sequence[str]) -> None:
        raise AssertionError(f"nothing was asked to stop: {job_ids}")


async def test_a_heartbeat_in_flight_keeps_the_fresh_lease_of_a_job_fetched_again(
    server: RedisServer, namespace: str
) -> None:
    broker = RedisBroker(server.url, namespace=namespace)
    broker.enqueue("q", [NewJob(id="a", payload=b"{}")])
    ledger = Ledger()
    [first] = (await broker.fetch("q", 1, 100, "w1")).jobs
    ledger.hold("q", first.id, first.token)
    server.command("DEBUG", "SLEEP", 0.15)  # the lease runs out
    renew = broker.heartbeat
    fresh: list[str] = []

    async def heartbeat_crossed_by_a_fetch(
        queue: str,
        worker: str,
        info: bytes,
        leases: Sequence[Lease],
        lease_ms: int,
        started: Collection[str] = (),
    ) -> HeartbeatReply:
        # While the renewal of the old lease is on its way, this worker fetches the job again.
        [again] = (await broker.fetch("q", 1, 60_000, "w1")).jobs
        ledger.hold("q", again.id, again.token)
        fresh.append(again.token)
        return await renew(queue, worker, info, leases, lease_ms, started)

    broker.heartbeat = heartbeat_crossed_by_a_fetch  # type: ignore[method-assign,assignment]
    config = WorkerConfig(QueueSelection(("q",)), lease_s=60)
    pool = cast("Pool", _NoPool())
    outage, chords_due = Outage(server.url), asyncio.Event()
    upkeep = Upkeep(broker, config, "w1", ledger, pool, outage, chords_due, lambda *_: None)
    await upkeep.heartbeat()
    assert ledger.held["a"].token == fresh[0] != first.token
    outcome = Outcome("a", fresh[0], "succeeded", b'{"state": "succeeded"}')
    assert await broker.ack("q", [outcome]) == [AckCode.SUCCEEDED]
    await broker.aclose()
    broker.close()


@pytest.mark.timeout(60)
async def test_a_late_success_is_kept_when_nobody_took_the_job_since_its_lease_ran_out(
    tasks: FaultTasks, workers: Workers, events: Events
) -> None:
    handle = tasks.slow.delay(3)  # queued first: the supervisor's own fetch takes it
    worker = workers.start("-c", "1", *ONE_S_LEASE, env=ONE_S_ENV)
    events.wait_for(1, event="started", job=handle.id)
    os.kill(worker.pid, signal.SIGSTOP)  # the supervisor freezes; its child runs on
    try:
        deadline = time.monotonic() + 10
        while handle.state != "queued":  # a fetch that takes nothing reaps the expired lease
            assert time.monotonic() < deadline, f"never reaped: {handle.state}"
            await tasks.app.broker.fetch("default", 0, 1000, "observer")
            await asyncio.sleep(0.05)
        events.wait_for(1, event="finished", job=handle.id)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    assert handle.get(timeout=15) == 3
    info = tasks.app.inspector.queue("default")
    assert (info.ready, info.active) == (0, 0)
    events.drain()
    assert len(events.matching(event="started", job=handle.id)) == 1, "it ran again"
    await tasks.app.broker.aclose()


@pytest.mark.timeout(90)
def test_killed_workers_charge_the_job_they_ran_and_not_the_one_queued_behind_it(
    server: RedisServer, tasks: FaultTasks, workers: Workers, events: Events, namespace: str
) -> None:
    running = tasks.slow.delay(30)
    behind = tasks.add.delay(1, 2)  # prefetched into the same child, never started
    client = server.client()
    for kill in (1, 2):  # max_stalls=1: the second stall of the running job is one too many
        worker = workers.start("-c", "1", "--prefetch", "1", *ONE_S_LEASE, env=ONE_S_ENV)
        events.wait_for(kill, event="started", job=running.id)
        wait_seen_running(client, namespace, running.id)
        worker.kill_all()
    workers.start("-c", "1", *ONE_S_LEASE, env=ONE_S_ENV)
    assert behind.get(timeout=15) == 3  # charged nothing: it never ran
    state = tasks.app.broker.job_state("default", running.id)
    assert state.state == "failed"
    assert state.outcome is not None
    outcome = json.loads(state.outcome)
    assert outcome["error"]["type"] == "errands.errors.JobStalled"
    assert (outcome["attempts"], outcome["deliveries"]) == (1, 2)
    assert outcome["finished_at"] == pytest.approx(time.time(), abs=30)
    stats = tasks.app.inspector.queue("default").stats
    assert (stats["stalled"], stats["lost"]) == (2, 2)
    client.close()


async def test_a_fetch_whose_reply_was_lost_is_not_sent_again(
    server: RedisServer, namespace: str
) -> None:
    proxy = DroppingProxy(server.port)
    broker = RedisBroker(proxy.url, namespace=namespace)
    direct = RedisBroker(server.url, namespace=namespace)
    try:
        broker.enqueue("q", [NewJob(id=f"j{i}", payload=b"{}") for i in range(10)])
        await broker.fetch("q", 1, 60_000, "w1")  # the library is loaded, the connection kept
        proxy.drop_reply_after(b"_fetch\r\n")
        with pytest.raises(BrokerUnavailable):
            await broker.fetch("q", 3, 60_000, "w1")
        assert proxy.dropped.is_set()
        assert (
            direct.inspector.queue("q").active == 1 + 3
        )  # one batch leased, not a second behind it
        assert len((await broker.fetch("q", 2, 60_000, "w1")).jobs) == 2  # a new connection
    finally:
        await broker.aclose()
        broker.close()
        direct.close()
        proxy.close()


async def test_an_ack_whose_reply_was_lost_is_sent_again_and_the_job_stays_done(
    server: RedisServer, namespace: str
) -> None:
    proxy = DroppingProxy(server.port)
    broker = RedisBroker(proxy.url, namespace=namespace)
    try:
        broker.enqueue("q", [NewJob(id="a", payload=b"{}")])
        [d] = (await broker.fetch("q", 1, 60_000, "w1")).jobs
        proxy.drop_reply_after(b"_ack\r\n")
        codes = await broker.ack(
            "q", [Outcome(d.id, d.token, "succeeded", b'{"state":"succeeded"}')]
        )
        assert proxy.dropped.is_set()
        assert codes == [AckCode.STALE]  # the resend found it settled by the first
        assert broker.job_state("q", "a").state == "succeeded"
    finally:
        await broker.aclose()
        broker.close()
        proxy.close()
