"""Records broken by hand go to the dead set with the reason; the good ones around them run.

A job whose meta is missing or unreadable, or whose payload is gone, cannot run: the call that
meets it (a fetch, a promotion of delayed jobs, a reap of expired leases) buries it in the dead
set, its outcome naming what was wrong, and goes on with the rest. Nothing is popped and then
dropped, and the worker never stops over it.
"""

from __future__ import annotations

import json

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers

from errands import App, JobFailed
from errands.broker.redis import RedisBroker
from errands.broker.redis.keys import QueueKeys


def _break(server: RedisServer, keys: QueueKeys, job_id: str, how: str) -> None:
    client = server.client()
    try:
        if how == "no meta":
            client.hdel(keys.prefix + "meta", job_id)
        elif how == "garbage meta":
            client.hset(keys.prefix + "meta", job_id, b"\xc1 not msgpack")
        elif how == "meta of another shape":
            client.hset(keys.prefix + "meta", job_id, b"\x93\x01\x02\x03")  # [1, 2, 3]
        else:
            client.hdel(keys.prefix + "jobs", job_id)
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_a_batch_with_broken_records_runs_its_good_jobs_and_buries_the_rest(
    server: RedisServer, tasks: FaultTasks, workers: Workers, namespace: str
) -> None:
    app = tasks.app
    keys = QueueKeys(namespace, "default")
    sent = [tasks.add.delay(i, i) for i in range(8)]
    broken = {
        sent[1].id: "no meta",
        sent[3].id: "garbage meta",
        sent[4].id: "meta of another shape",
        sent[6].id: "no payload",
    }
    says = {
        "no meta": "its meta is missing",
        "garbage meta": "its meta cannot be read",
        "meta of another shape": "its meta cannot be read",
        "no payload": "its payload is missing",
    }
    for job_id, how in broken.items():
        _break(server, keys, job_id, how)
    worker = workers.start("-c", "1")
    healthy = [s for s in sent if s.id not in broken]
    assert [s.get(timeout=15) for s in healthy] == [2 * i for i in (0, 2, 5, 7)]
    dead = {d.id for d in app.inspector.dead("default", limit=1000).items}
    assert dead == set(broken)
    for handle in sent:
        if handle.id in broken:
            with pytest.raises(JobFailed, match=r"errands\.errors\.CorruptJob") as failure:
                handle.get(timeout=5)
            assert says[broken[handle.id]] in failure.value.error_message
    info = app.inspector.queue("default")
    assert (info.ready, info.active, info.dead) == (0, 0, 4)
    assert worker.running()
    assert app.broker.purge("default", list(broken)) == 4


@pytest.mark.timeout(30)
async def test_a_broken_record_in_the_delayed_or_active_set_is_buried_by_the_call_that_meets_it(
    server: RedisServer, namespace: str
) -> None:
    broker = RedisBroker(server.url, namespace=namespace)
    app = App(broker=broker)

    @app.task(name="later")
    def later() -> None: ...

    keys = broker.keys("default")
    delayed = later.apply_async(countdown=0.05)
    _break(server, keys, delayed.id, "garbage meta")
    running = later.delay()
    leased = await broker.fetch("default", 1, 50, "w1")
    assert [d.id for d in leased.jobs] == [running.id]
    _break(server, keys, running.id, "no meta")
    server.command("DEBUG", "SLEEP", 0.1)  # both timers run out
    assert (await broker.fetch("default", 10, 1000, "w1")).jobs == []
    outcomes = {h.id: broker.job_state("default", h.id).outcome for h in (delayed, running)}
    for outcome in outcomes.values():
        assert outcome is not None
        assert json.loads(outcome)["error"]["type"] == "errands.errors.CorruptJob"
    assert {d.id for d in broker.inspector.dead("default").items} == {delayed.id, running.id}
    await broker.aclose()
    broker.close()


def test_a_wait_on_a_job_whose_meta_cannot_be_read_ends_when_it_is_buried(
    server: RedisServer, tasks: FaultTasks, workers: Workers, namespace: str
) -> None:
    handle = tasks.add.delay(1, 2)
    _break(server, QueueKeys(namespace, "default"), handle.id, "garbage meta")
    assert handle.state == "corrupt"
    workers.start("-c", "1")
    with pytest.raises(JobFailed, match="CorruptJob"):
        handle.get(timeout=15)
