"""What only the memory broker has: an injectable clock, thread safety, no Redis import.

Its behaviour as a broker is pinned, beside Redis's, by the conformance suite
(tests/integration/test_broker_conformance.py runs `errands.conformance` on both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import errands.testing
from errands import App
from errands.broker.types import NewJob, Outcome
from errands.broker.zset import ZSet
from errands.testing import MemoryBroker

Q = "default"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_the_testing_module_exports_the_memory_broker_and_the_broker_checks() -> None:
    assert errands.testing.__all__ == [
        "BrokerCheckFailed",
        "ManualClock",
        "MemoryBroker",
        "acheck_broker",
        "check_broker",
        "run_jobs",
    ]
    undocumented = [n for n in errands.testing.__all__ if not getattr(errands.testing, n).__doc__]
    assert undocumented == []


def test_the_memory_broker_imports_no_redis_client() -> None:
    code = "import sys, errands.testing; print([m for m in sys.modules if 'redis' in m])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_default_clock_is_wall_time() -> None:
    assert MemoryBroker().clock is time.time


async def test_the_injected_clock_decides_to_the_millisecond_when_a_job_is_due() -> None:
    clock = Clock()
    broker = MemoryBroker(clock=clock)
    broker.enqueue(Q, [NewJob(id="a", payload=b"{}", delay_ms=300)])
    clock.now += 0.299
    fetched = await broker.fetch(Q, 1, 30_000, "w1")
    assert (fetched.jobs, fetched.next_due_ms) == ([], 1)
    clock.now += 0.001
    assert [d.id for d in (await broker.fetch(Q, 1, 30_000, "w1")).jobs] == ["a"]


async def test_the_injected_clock_expires_leases_without_sleeping() -> None:
    clock = Clock()
    broker = MemoryBroker(clock=clock)
    broker.enqueue(Q, [NewJob(id="a", payload=b"{}")])
    await broker.fetch(Q, 1, 30_000, "w1")
    clock.now += 30.0
    [again] = (await broker.fetch(Q, 1, 30_000, "w2")).jobs
    assert (again.id, again.token) == ("a", "2")


async def test_an_app_on_a_memory_broker_sends_jobs_and_gets_their_results() -> None:
    app = App(broker=MemoryBroker())

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(1, 2)
    assert result.state == "queued"
    [delivery] = (await app.broker.fetch(Q, 1, 30_000, "w1")).jobs
    outcome = json.dumps({"state": "succeeded", "result": 3}).encode()
    await app.broker.ack(Q, [Outcome(delivery.id, delivery.token, "succeeded", outcome)])
    assert result.get(timeout=1) == 3


async def test_enqueues_from_many_threads_lose_no_job_and_keep_each_threads_order() -> None:
    broker = MemoryBroker()

    def produce(thread: int) -> None:
        for i in range(300):
            broker.enqueue(Q, [NewJob(id=f"{thread}-{i:03}", payload=b"{}")])

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got: list[str] = []
    while fetched := (await broker.fetch(Q, 1000, 30_000, "w1")).jobs:
        got += [d.id for d in fetched]
    assert len(got) == len(set(got)) == 2400
    for thread in range(8):
        mine = [i for i in got if i.startswith(f"{thread}-")]
        assert mine == sorted(mine)


async def test_a_heartbeat_stamps_the_brokers_time_whatever_the_worker_says() -> None:
    clock = Clock()  # 1,000 s: 1,000,000 ms
    broker = MemoryBroker(clock=clock)
    await broker.heartbeat(Q, "w1", json.dumps({"seen": "lately"}).encode(), [], 30_000)
    assert [w.seen_at for w in broker.inspector.workers(Q).items] == [1_000.0]
    await broker.maintain(Q, "m", 1_000)
    assert [w.id for w in broker.inspector.workers(Q).items] == ["w1"]


def test_a_zset_keeps_its_order_through_many_rescorings() -> None:
    zset = ZSet()
    for score in range(500):  # a heartbeat re-scores its lease again and again
        zset.add("renewed", 1_000 + score)
    zset.add("a", 10)
    zset.add("b", 10)
    zset.add("z", 5)
    assert zset.lowest(10) == [("z", 5), ("a", 10), ("b", 10), ("renewed", 1_499)]
    assert zset.pop_min(10, max_score=10) == ["z", "a", "b"]
    assert zset.first() == ("renewed", 1_499)
    assert len(zset) == 1
