"""A worker rides out what a real Redis does on a bad day, and says so in its log.

Each test injects one fault into a server of its own: a failover that makes the worker's Redis a
replica (READONLY, UNBLOCKED), a full ``maxmemory`` (OOM), a long script (BUSY), a server frozen
longer than a lease (DEBUG SLEEP), kill -9 and a restart on the append-only file. The worker
must go on without a restart, keep the leases of the jobs it runs (no second worker starts
them), and stop cleanly on SIGTERM afterwards. Where a fault lasts a given time, the test sleeps
for that time: the time passing is the fault.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.faults.fault_app import FaultTasks, build, runs_key
from tests.faults.servers import RedisServer
from tests.integration.worker_app import gate_key
from tests.integration.workers import Events, Workers, stop_cleanly, wait_until

from errands import BrokerFull, BrokerUnavailable

LEASE = ("--lease", "2")
LEASE_ENV = {"ERRANDS_TEST_LEASE": "2"}
OUTAGE_S = 3.0  # longer than a lease: a worker that stopped renewing would lose its job


@pytest.mark.timeout(60)
def test_a_worker_rides_out_a_failover_that_turns_its_redis_into_a_replica(
    tmp_path: Path,
    server: RedisServer,
    tasks: FaultTasks,
    workers: Workers,
    events: Events,
    namespace: str,
) -> None:
    replica = RedisServer(tmp_path / "replica").start()
    try:
        replica.replica_of(server)
        replica.wait_in_sync()
        worker = workers.start("-c", "1", *LEASE, env=LEASE_ENV)
        long = tasks.gate.delay("failover")  # runs until the test opens its gate
        events.wait_for(1, event="started", job=long.id)
        # The replica takes over; the worker's server follows it: every write is READONLY, and
        # a blocked read is cut short with UNBLOCKED.
        replica.replica_of(None)
        server.replica_of(replica)
        server.wait_in_sync()
        worker.wait_for_log("READONLY")
        time.sleep(OUTAGE_S)
        server.replica_of(None)  # and back, as a second failover would
        replica.replica_of(server)
        worker.wait_for_log("answers again")
        server.command("SET", gate_key(namespace, "failover"), "1")
        assert long.get(timeout=30) == "failover"
        assert tasks.add.delay(1, 2).get(timeout=15) == 3
        events.drain()
        assert len(events.matching(event="started", job=long.id)) == 1, "it ran twice"
        stop_cleanly(worker)
    finally:
        replica.stop()


@pytest.mark.timeout(60)
def test_a_full_redis_refuses_new_jobs_while_workers_keep_their_leases_and_drain_it(
    server: RedisServer, tasks: FaultTasks, workers: Workers, events: Events, namespace: str
) -> None:
    first, second = workers.start_many(2, "-c", "1", *LEASE)
    long = tasks.gate.delay("full")  # runs until the test opens its gate
    events.wait_for(1, event="started", job=long.id)
    queued = [tasks.echo.delay(i, 0.2) for i in range(4)]
    server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
    try:
        with pytest.raises(BrokerFull, match=r"maxmemory reached.*nothing of it was written"):
            tasks.add.delay(1, 2)
        with pytest.raises(BrokerUnavailable):  # BrokerFull is one: retrying later is the remedy
            tasks.add.delay(1, 2)
        time.sleep(OUTAGE_S)  # the workers drain what was queued and renew the long job's lease
    finally:
        server.command("CONFIG", "SET", "maxmemory", "0")
    assert [q.get(timeout=15) for q in queued] == [0, 1, 2, 3]
    server.command("SET", gate_key(namespace, "full"), "1")
    assert long.get(timeout=30) == "full"
    events.drain()
    assert len(events.matching(event="started", job=long.id)) == 1, "a second worker started it"
    for worker in (first, second):
        stop_cleanly(worker)


@pytest.mark.timeout(60)
def test_a_worker_rides_out_a_script_that_keeps_redis_busy(
    server: RedisServer, tasks: FaultTasks, workers: Workers
) -> None:
    server.command("CONFIG", "SET", "busy-reply-threshold", "100")  # BUSY after 100 ms
    worker = workers.start("-c", "1", *LEASE, env=LEASE_ENV)
    assert tasks.add.delay(1, 1).get(timeout=15) == 2
    spin = (
        f"local t = redis.call('TIME')[1] + 0 while redis.call('TIME')[1] - t < {OUTAGE_S} do end"
    )
    busy = threading.Thread(target=server.command, args=("EVAL", spin, 0), daemon=True)
    busy.start()
    worker.wait_for_log("BUSY")
    busy.join(timeout=OUTAGE_S + 10)
    worker.wait_for_log("answers again")
    assert tasks.add.delay(2, 2).get(timeout=15) == 4
    stop_cleanly(worker)


@pytest.mark.timeout(60)
def test_a_worker_rides_out_a_redis_frozen_longer_than_a_lease(
    server: RedisServer, tasks: FaultTasks, workers: Workers, events: Events, namespace: str
) -> None:
    worker = workers.start("-c", "2", *LEASE, env=LEASE_ENV)
    long = tasks.count.delay("long", OUTAGE_S + 1)
    wait_until(lambda: server.client().hget(runs_key(namespace), "long") is not None, 10, "start")
    server.command("DEBUG", "SLEEP", OUTAGE_S)  # everyone waits, then every lease is out of date
    assert long.get(timeout=30) == "long"
    assert tasks.add.delay(3, 4).get(timeout=15) == 7
    runs = int(server.client().hget(runs_key(namespace), "long") or 0)
    # At least once: the frozen server's first command after it wakes may reap the lease
    # before the heartbeat renews it. The job then runs again, never more.
    assert 1 <= runs <= 2
    stop_cleanly(worker)


@pytest.mark.timeout(90)
def test_a_worker_rides_out_kill_9_and_a_restart_of_a_persistent_redis(
    tmp_path: Path, namespace: str
) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True).start()
    tasks = build(server.url, namespace)
    farm = Workers(server.url, namespace, tmp_path, app_spec="tests.faults.fault_app:app")
    try:
        worker = farm.start("-c", "2", *LEASE, env=LEASE_ENV)
        sent = [tasks.count.delay(f"job-{i}", 0.02) for i in range(200)]
        runs = runs_key(namespace)
        wait_until(lambda: server.client().hlen(runs) >= 50, 20, "50 jobs to run")
        server.kill()
        worker.wait_for_log("cannot reach Redis")
        server.start()  # the same port and folder: it loads the append-only file
        worker.wait_for_log("answers again")
        assert [s.get(timeout=60) for s in sent] == [f"job-{i}" for i in range(200)]
        counts = [int(v) for v in server.client().hvals(runs)]
        assert len(counts) == 200  # every job ran, and its run was recorded
        duplicates = sum(c - 1 for c in counts)
        print(f"kill -9 of Redis: 200 jobs, {duplicates} ran twice")
        assert duplicates <= 20, f"{duplicates} jobs ran again: only those in flight may"
        stop_cleanly(worker)
    finally:
        farm.close()
        tasks.app.close()
        server.stop()


@pytest.mark.timeout(60)
def test_an_error_that_does_not_pass_stops_the_worker_which_gives_its_jobs_back_and_exits_1(
    server: RedisServer, tasks: FaultTasks, workers: Workers, events: Events, namespace: str
) -> None:
    worker = workers.start("-c", "1", *LEASE, env=LEASE_ENV)
    held = tasks.gate.delay("never")
    events.wait_for(1, event="started", job=held.id)
    # Something else writes a key of the namespace: the heartbeat's next write is refused.
    client = server.client()
    workers_key = f"{namespace}:{{default}}:workers"
    client.delete(workers_key)
    client.set(workers_key, "not a hash")
    assert worker.wait(20) == 1
    log = worker.log()
    assert "refused a call to heartbeat" in log
    assert "WRONGTYPE" in log
    assert "giving back every job" in log
    assert "Traceback" not in log  # an errands error: one line, no traceback
    assert held.state == "queued"  # given back, its attempt refunded
    assert tasks.app.broker.job_state("default", held.id).attempts == 0
    client.close()
