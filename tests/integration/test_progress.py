"""Progress in real workers: read while the job runs, gone once it succeeds, kept when it dies.

The tasks (`worker_app`: steps, flood) report, say so with an event, and wait for a gate the test
opens; a report reaches Redis a moment after it is made, so the test waits (bounded) for it.
A task that reports 100,000 times in a tight loop is counted on a server of the test's own,
whose keyspace notifications tell each write of the progress key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from errands import AsyncResult, JobFailed, Progress
from errands.progress import INTERVAL_S
from tests.faults.servers import RedisServer
from tests.integration.worker_app import Tasks, build, gate_key
from tests.integration.workers import Events, Workers, wait_until

_REACH_S = 10.0  # a report is in Redis well within this (it goes within INTERVAL_S + a tick)


def _progress_reaches(handle: AsyncResult[Any], fraction: float) -> Progress:
    """Wait until the job's progress in Redis says `fraction`; return it."""
    seen: list[Progress | None] = [None]

    def reached() -> bool:
        seen[0] = handle.progress
        return seen[0] is not None and seen[0].fraction == fraction

    wait_until(reached, _REACH_S, f"the progress of job {handle.id} to reach {fraction}")
    assert seen[0] is not None
    return seen[0]


def _read_async(tasks: Tasks, handle: AsyncResult[Any]) -> Progress | None:
    async def read() -> Progress | None:
        try:
            return await handle.aprogress()
        finally:
            await tasks.app.broker.aclose()

    return asyncio.run(read())


@pytest.mark.parametrize("pool", ["process", "solo"])
def test_a_jobs_progress_reads_back_while_it_runs_and_is_gone_once_it_succeeds(
    pool: str,
    tasks: Tasks,
    workers: Workers,
    events: Events,
    client: redis.Redis,
    namespace: str,
) -> None:
    workers.start("-c", "1", "--pool", pool)
    handle = tasks.steps.delay("runs")
    events.wait_for(1, event="reported", job=handle.id)
    # Its second report came within the interval of the first: it went at the trailing edge.
    progress = _progress_reaches(handle, 0.4)
    assert progress.message == "step 2 of 5"
    assert progress.data == {"rows": 1200, "stage": "copy"}
    assert progress.updated_at.tzinfo is not None
    assert abs(dt.datetime.now(dt.UTC) - progress.updated_at) < dt.timedelta(minutes=1)
    assert _read_async(tasks, handle) == progress
    detail = tasks.app.inspector.job("default", handle.id)
    assert detail is not None
    assert detail.progress == progress
    client.set(gate_key(namespace, "runs"), 1)
    assert handle.get(timeout=15) == "runs"
    assert handle.progress is None
    assert client.hlen(f"{namespace}:{{default}}:progress") == 0


def test_a_dead_job_keeps_the_progress_it_died_at(
    tasks: Tasks, workers: Workers, events: Events, client: redis.Redis, namespace: str
) -> None:
    workers.start("-c", "1")
    handle = tasks.steps.delay("dies", fail=True)
    events.wait_for(1, event="reported", job=handle.id)
    _progress_reaches(handle, 0.4)
    client.set(gate_key(namespace, "dies"), 1)
    with pytest.raises(JobFailed, match="died at step 2 of 5"):
        handle.get(timeout=15)
    progress = handle.progress
    assert progress is not None
    assert (progress.fraction, progress.message) == (0.4, "step 2 of 5")
    assert tasks.app.broker.purge("default", [handle.id]) == 1
    assert handle.progress is None


@pytest.mark.timeout(90)
def test_a_task_reporting_100000_times_in_a_tight_loop_costs_a_handful_of_redis_writes(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    namespace = f"errands-test-{uuid.uuid4().hex[:12]}"
    farm = Workers(server.url, namespace, tmp_path)
    tasks = build(server.url, namespace)
    listener = server.client()
    watcher = listener.pubsub()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    try:
        # Every write of the queue's progress key, as the server tells it: one per stored call.
        server.command("CONFIG", "SET", "notify-keyspace-events", "Kh")
        watcher.subscribe(f"__keyspace@0__:{namespace}:{{default}}:progress")
        worker = farm.start("-c", "1")
        handle = tasks.flood.delay(100_000)
        seconds = handle.get(timeout=60)["seconds"]
        assert handle.progress is None
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0, worker.log()
        writes = _keyspace_events(watcher)
    finally:
        watcher.close()
        listener.close()
        tasks.app.close()
        farm.close()
        server.stop()
    stored = writes.count("hset")
    # The first report, then at most one per interval of the loop; the last of the burst only
    # if the job had not finished by then (it had: its ack deleted the progress, "hdel").
    assert 1 <= stored <= 2 + seconds / INTERVAL_S, (seconds, writes)
    assert writes[-1] == "hdel", writes


def _keyspace_events(watcher: redis.client.PubSub) -> list[str]:
    """Every keyspace event received so far: a PING's answer comes after all of them."""
    watcher.ping()
    events: list[str] = []
    while True:
        message = watcher.get_message(timeout=10)
        assert message is not None, f"no answer to the PING; events so far: {events}"
        if message["type"] == "pong":
            return events
        if message["type"] == "message":
            events.append(message["data"].decode())
