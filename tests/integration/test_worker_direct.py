"""Idle children that wait on Redis themselves (``errands.broker.redis.direct_line``), end to end.

When its queue is drained, a process-pool worker has each idle child block on Redis with a
fetch pipelined behind: these tests show that jobs reach them and their results come back,
that bursts hand over to the supervisor's batched path, and that stopping ends those waits at
once without leaving a job leased to a process that is gone.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from errands.embedded import EmbeddedServer
from tests.integration.worker_app import Tasks, build
from tests.integration.workers import Events, WorkerProcess, Workers, free_port, wait_until


def _blocked_on_a_wake_key(client: redis.Redis, worker: WorkerProcess) -> int:
    """How many of `worker`'s children block on Redis now (their connections are named)."""
    mine = f":{worker.pid}:"
    return sum(
        1
        for c in client.client_list()
        if c.get("cmd") == "bzpopmin" and "b" in c["flags"] and mine in c.get("name", "")
    )


def _children_wait(client: redis.Redis, worker: WorkerProcess, timeout_s: float) -> None:
    """Return once both of `worker`'s children block on Redis themselves."""
    wait_until(
        lambda: _blocked_on_a_wake_key(client, worker) == 2,
        timeout_s,
        f"both children of worker {worker.pid} to block on Redis",
    )


@contextmanager
def _fetch_calls(client: redis.Redis, namespace: str) -> Iterator[list[str]]:
    """Collect the client address of every fetch call on `namespace`'s queues (via MONITOR)."""
    seen: list[str] = []
    monitor = client.monitor()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    started = threading.Event()
    end_mark = f"end of {namespace} fetch calls"

    def watch() -> None:
        with monitor as m:  # MONITOR is on once this returns (it reads the reply)
            started.set()
            for command in m.listen():
                text = command["command"]
                if text.startswith("ECHO") and end_mark in text:
                    return
                if text.startswith("FCALL") and "_fetch " in text and f" {namespace}:" in text:
                    seen.append(f"{command['client_address']}:{command['client_port']}")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert started.wait(5), "MONITOR did not start"
    try:
        yield seen
    finally:
        client.echo(end_mark)  # everything before it has been seen once the watcher returns
        watcher.join(5)


def _idle_worker(workers: Workers, tasks: Tasks, client: redis.Redis) -> WorkerProcess:
    """A worker with two children, one job run, both children now waiting on Redis."""
    worker = workers.start("-c", "2")
    assert tasks.add.delay(0, 0).get(timeout=10) == 0
    _children_wait(client, worker, timeout_s=5)
    return worker


def test_idle_children_wait_on_redis_and_run_what_comes(
    tasks: Tasks, workers: Workers, client: redis.Redis
) -> None:
    worker = _idle_worker(workers, tasks, client)
    for i in range(20):  # one at a time: each goes to a waiting child and is settled by it
        assert tasks.add.delay(i, 1).get(timeout=10) == i + 1
    burst = [tasks.add.delay(i, i) for i in range(200)]  # more than the children can take
    assert [handle.get(timeout=20) for handle in burst] == [2 * i for i in range(200)]
    assert tasks.app.inspector.queue("default").active == 0
    log = worker.log()
    assert "lost the lease" not in log
    assert "after its lease was lost" not in log


def test_a_job_taken_by_a_waiting_child_costs_the_supervisor_no_fetch(
    tasks: Tasks, workers: Workers, client: redis.Redis, namespace: str
) -> None:
    worker = _idle_worker(workers, tasks, client)
    with _fetch_calls(client, namespace) as calls:
        for i in range(10):  # one at a time: nothing is left behind the job a child takes
            assert tasks.add.delay(i, 1).get(timeout=10) == i + 1
    waiting = {
        c["addr"] for c in client.client_list() if c.get("name", "").startswith("errands-wait:")
    }
    assert len(calls) >= 10
    assert [addr for addr in calls if addr not in waiting] == []
    with _fetch_calls(client, namespace) as calls:
        # In one call, so they are all queued at once (sent one by one, the children may keep
        # up and find nothing behind each job).
        burst = tasks.app.enqueue_many([tasks.add.s(i, i) for i in range(200)])
        assert [handle.get(timeout=20) for handle in burst] == [2 * i for i in range(200)]
    # A burst is left behind the first job taken: the supervisor fetches it in batches.
    assert [addr for addr in calls if addr not in waiting] != []
    assert worker.running()


def _wakeups(pid: int) -> int:
    """How many times every thread of process `pid` has been switched in so far (Linux)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def test_idle_children_sleep_instead_of_waking_on_a_timer(
    tasks: Tasks, workers: Workers, client: redis.Redis
) -> None:
    worker = _idle_worker(workers, tasks, client)
    listing = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text()
    children = [int(pid) for pid in listing.split()]
    assert len(children) == 2
    before = [_wakeups(pid) for pid in children]
    time.sleep(1.0)
    woken = [_wakeups(pid) - count for pid, count in zip(children, before, strict=True)]
    # A thread polling every 5 ms would wake 200 times in that second.
    assert max(woken) < 20, woken


def test_stopping_ends_the_childrens_waits_at_once_and_leaves_nothing_leased(
    tasks: Tasks, workers: Workers, client: redis.Redis
) -> None:
    worker = _idle_worker(workers, tasks, client)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout_s=10) == 0, worker.log()
    # Without an interrupt, a child would sit out its BZPOPMIN (5 s) before it saw the stop.
    assert time.monotonic() - started < 3, worker.log()
    assert _blocked_on_a_wake_key(client, worker) == 0
    after = tasks.add.delay(3, 3)
    assert after.state == "queued"


def test_a_job_sent_as_the_worker_stops_is_run_or_left_queued_never_stranded(
    tasks: Tasks, workers: Workers, client: redis.Redis
) -> None:
    for round_ in range(3):
        worker = _idle_worker(workers, tasks, client)
        sent = tasks.add.delay(round_, 1)
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout_s=10) == 0, worker.log()
        assert sent.state in ("succeeded", "queued"), worker.log()
        assert tasks.app.inspector.queue("default").active == 0


def test_children_hand_their_wait_over_while_redis_is_away_and_take_it_back(
    namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    server = EmbeddedServer(tmp_path / "redis", port=port).start()
    farm = Workers(server.url, namespace, tmp_path)
    tasks = build(server.url, namespace)
    watcher = redis.Redis.from_url(server.url)
    try:
        worker = _idle_worker(farm, tasks, watcher)

        server.stop()
        worker.wait_for_log("waiting on the broker failed", timeout_s=10)
        worker.wait_for_log("retrying", timeout_s=10)  # the supervisor's own retries go on
        server = EmbeddedServer(tmp_path / "redis", port=port).start()

        assert tasks.add.delay(2, 2).get(timeout=30) == 4
        watcher = redis.Redis.from_url(server.url)
        _children_wait(watcher, worker, timeout_s=10)
        # Each child retried at most every 2 s while Redis was away: no busy loop.
        assert worker.log().count("waiting on the broker failed") <= 8, worker.log()
        assert worker.running()
    finally:
        watcher.close()
        tasks.app.close()
        farm.close()
        server.stop()


def test_a_delayed_job_sent_to_waiting_children_starts_on_time(
    tasks: Tasks, workers: Workers, client: redis.Redis, events: Events
) -> None:
    _idle_worker(workers, tasks, client)
    sent_at = time.time()
    delayed = tasks.where.apply_async(countdown=1.0)
    started = events.wait_for(event="started", job=delayed.id)[0]["time"]
    # Not at the end of a 5 s wait: the child that saw it shortened its next wait.
    assert 1.0 <= started - sent_at < 1.5
