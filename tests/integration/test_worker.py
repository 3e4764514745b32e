"""The worker end to end: real worker processes (``errands worker``) against real Redis.

Tasks live in `worker_app` and record what happens to them in Redis; each test waits for those
events, for a result, or for a log line, always with a bound, never by sleeping and hoping.
Workers run with ``-c 1`` or ``-c 2``, a 2 s lease and short grace periods, so the file stays fast.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import time
from pathlib import Path

import pytest
import redis

from errands import JobFailed
from errands.broker.types import CancelCode
from errands.embedded import EmbeddedServer
from tests.integration.worker_app import DEFAULT_LEASE_S, Tasks, build, gate_key
from tests.integration.workers import Events, Workers, free_port, process_gone, wait_until

LEASE_S = DEFAULT_LEASE_S
# How late a worker may start a job after it became due: one idle fetch pass (0.5 s) plus slack
# for two busy cores.
SCHEDULING_S = 0.5


def _dead(tasks: Tasks, queue: str = "default") -> list[str]:
    """The ids in the dead-letter set of `queue`."""
    return [d.id for d in tasks.app.inspector.dead(queue, limit=1000).items]


def test_a_result_is_not_held_back_by_a_long_job_after_it_on_the_same_child(
    tasks: Tasks, workers: Workers, events: Events, client: redis.Redis, namespace: str
) -> None:
    quick = tasks.add.delay(2, 3)
    long_job = tasks.gate.delay("held")
    workers.start("-c", "1")  # one child: both jobs go to it, the long one queued behind
    events.wait_for(event="started", job=long_job.id)
    assert quick.get(timeout=5) == 5
    assert long_job.state == "active"
    client.set(gate_key(namespace, "held"), 1)
    assert long_job.get(timeout=10) == "held"


# Leases and crashes ------------------------------------------------------------------------------


def test_a_killed_worker_gives_its_job_to_another_worker_within_one_lease(
    tasks: Tasks, workers: Workers, events: Events, client: redis.Redis, namespace: str
) -> None:
    first = workers.start("-c", "1")
    result = tasks.gate.delay("rerun")
    started = events.wait_for(event="started", job=result.id)[0]
    assert started["ppid"] == first.pid
    second = workers.start("-c", "1")

    first.signal(signal.SIGKILL)
    killed_at = time.time()
    assert first.wait(timeout_s=5) == -signal.SIGKILL
    wait_until(lambda: process_gone(started["pid"]), 5, "the killed worker's child to exit")
    client.set(gate_key(namespace, "rerun"), 1)

    assert result.get(timeout=LEASE_S + 10) == "rerun"
    rerun = events.wait_for(2, event="started", job=result.id)[1]
    assert rerun["ppid"] == second.pid
    assert rerun["time"] - killed_at < LEASE_S + SCHEDULING_S + 1.0
    assert not events.matching(event="finished", pid=started["pid"])


def test_a_healthy_job_running_three_leases_long_is_never_run_twice(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    both = workers.start_many(2, "-c", "1")
    result = tasks.slow.delay(3 * LEASE_S)

    assert result.get(timeout=3 * LEASE_S + 10) == 3 * LEASE_S
    events.drain()
    assert len(events.matching(event="started", job=result.id)) == 1
    assert len(events.matching(event="finished", job=result.id)) == 1
    for worker in both:
        assert "lost the lease" not in worker.log()
        assert "lease was lost" not in worker.log()


def test_a_child_that_dies_fails_its_job_as_worker_lost_and_is_replaced(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    worker = workers.start("-c", "1")

    lost = tasks.die.delay(2)  # max_retries=1: dies on both attempts
    with pytest.raises(JobFailed) as failure:
        lost.get(timeout=15)
    assert failure.value.error_type == "errands.errors.WorkerLost"
    assert "exit code 1" in failure.value.error_message
    runs = events.wait_for(2, event="started", job=lost.id)
    assert [run["attempt"] for run in runs] == [1, 2]
    assert runs[0]["pid"] != runs[1]["pid"]

    survivor = tasks.die.delay(1)  # dies once, then its retry succeeds on a new child
    assert survivor.get(timeout=15) == 2
    died, survived = events.wait_for(2, event="started", job=survivor.id)
    assert survived["pid"] != died["pid"]

    after = tasks.where.delay().get(timeout=10)
    assert after["ppid"] == worker.pid
    dead_children = {runs[0]["pid"], runs[1]["pid"], died["pid"]}
    assert after["pid"] not in dead_children
    assert all(process_gone(pid) for pid in dead_children)
    assert worker.running()


# Time limits -------------------------------------------------------------------------------------


def test_a_hard_time_limit_kills_only_the_child_and_the_worker_serves_on(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    worker = workers.start("-c", "1")
    result = tasks.hang.delay()  # hard limit 1 s; it ignores its soft limit
    started = events.wait_for(event="started", job=result.id)[0]

    with pytest.raises(JobFailed) as failure:
        result.get(timeout=10)
    assert failure.value.error_type == "errands.errors.TimeLimitExceeded"
    assert "hard time limit of 1s" in failure.value.error_message
    outcome = result.outcome()
    assert outcome is not None
    assert outcome.finished_at is not None
    # The supervisor starts the clock when it hands the job over, a little before it starts.
    assert 0.9 <= outcome.finished_at - started["time"] < 1.0 + SCHEDULING_S + 1.0
    assert result.id in _dead(tasks)  # max_retries=0
    assert events.wait_for(event="soft_limit_ignored", job=result.id, timeout_s=1)

    after = tasks.where.delay().get(timeout=10)
    assert after["ppid"] == worker.pid
    assert after["pid"] != started["pid"]
    assert process_gone(started["pid"])
    assert worker.running()


def test_a_soft_time_limit_lets_a_sync_task_clean_up_and_cancels_an_async_one(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    workers.start("-c", "1")
    sync_job = tasks.soft_sync.delay()
    async_job = tasks.soft_async.delay()

    assert sync_job.get(timeout=10) == "cleaned up"
    started = events.wait_for(event="started", job=sync_job.id)[0]
    cleanup = events.wait_for(event="cleanup", job=sync_job.id)[0]
    assert 0.45 <= cleanup["time"] - started["time"] < 0.5 + 1.0

    with pytest.raises(JobFailed) as failure:
        async_job.get(timeout=10)
    assert failure.value.error_type == "errands.errors.SoftTimeLimitExceeded"
    assert "soft time limit of 0.5s" in failure.value.error_message
    started = events.wait_for(event="started", job=async_job.id)[0]
    cancelled = events.wait_for(event="cancelled", job=async_job.id)[0]
    assert 0.45 <= cancelled["time"] - started["time"] < 0.5 + 1.0
    assert events.wait_for(event="finally", job=async_job.id)


# Retries -----------------------------------------------------------------------------------------


def test_retries_come_at_backed_off_jittered_times_and_stop_at_the_limit(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    workers.start("-c", "1")
    result = tasks.always_fails.delay()  # max_retries=3, retry_backoff=0.2, retry_backoff_max=2

    with pytest.raises(JobFailed) as failure:
        result.get(timeout=15)
    runs = events.wait_for(4, event="started", job=result.id)
    assert [run["attempt"] for run in runs] == [1, 2, 3, 4]
    for failed_attempt, (before, after) in enumerate(itertools.pairwise(runs), start=1):
        most = 0.2 * 2 ** (failed_attempt - 1)
        assert 0 <= after["time"] - before["time"] <= most + SCHEDULING_S

    assert failure.value.error_type == "ValueError"
    assert failure.value.error_message == "failure on attempt 4"
    assert failure.value.remote_traceback is not None
    assert 'raise ValueError(f"failure on attempt {ctx.attempt}")' in (
        failure.value.remote_traceback
    )
    assert result.id in _dead(tasks)
    events.drain()
    assert len(events.matching(event="started", job=result.id)) == 4


def test_autoretry_for_and_dont_autoretry_for_decide_which_errors_are_retried(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    workers.start("-c", "1")
    refused = tasks.picky.delay("PermissionError")  # in dont_autoretry_for
    unlisted = tasks.picky.delay("ValueError")  # not in autoretry_for=(OSError,)
    listed = tasks.picky.delay("TimeoutError")  # an OSError: retried

    for job, error in ((refused, "PermissionError"), (unlisted, "ValueError")):
        with pytest.raises(JobFailed) as failure:
            job.get(timeout=10)
        assert failure.value.error_type == error
        assert job.id in _dead(tasks)
    assert listed.get(timeout=10) == 2

    events.drain()
    assert len(events.matching(event="started", job=refused.id)) == 1
    assert len(events.matching(event="started", job=unlisted.id)) == 1
    assert len(events.matching(event="started", job=listed.id)) == 2


@pytest.mark.parametrize("task_name", ["retry_by_ctx", "retry_by_raise"])
def test_a_task_asking_for_a_retry_runs_again_after_its_countdown(
    task_name: str, tasks: Tasks, workers: Workers, events: Events
) -> None:
    workers.start("-c", "1")
    task = tasks.retry_by_ctx if task_name == "retry_by_ctx" else tasks.retry_by_raise
    result = task.delay(0.3)

    assert result.get(timeout=10) == 2
    first, second = events.wait_for(2, event="started", job=result.id)
    assert 0.3 - 0.01 <= second["time"] - first["time"] < 0.3 + SCHEDULING_S + 0.5


def test_waiting_for_a_result_inside_a_task_fails_and_names_the_workflows(
    tasks: Tasks, workers: Workers
) -> None:
    workers.start("-c", "1")
    for task in (tasks.waits_inside, tasks.awaits_inside):
        result = task.delay()
        with pytest.raises(JobFailed) as failure:
            result.get(timeout=10)
        assert failure.value.error_type == "errands.errors.WaitInsideTaskError"
        for workflow in ("chain", "group", "chord"):
            assert workflow in failure.value.error_message


# Shutdown ----------------------------------------------------------------------------------------


def test_sigterm_lets_a_short_job_finish_and_gives_a_long_one_back_uncharged(
    tasks: Tasks, workers: Workers, events: Events, client: redis.Redis, namespace: str
) -> None:
    worker = workers.start("-c", "2", "--grace-period", "1.5")
    long_job = tasks.gate.delay("after-restart")
    events.wait_for(event="started", job=long_job.id)
    short_job = tasks.slow.delay(0.5)
    events.wait_for(event="started", job=short_job.id)

    worker.signal(signal.SIGTERM)
    assert short_job.get(timeout=5) == 0.5
    assert worker.wait(timeout_s=10) == 0, worker.log()
    assert "grace period over" in worker.log()
    assert long_job.state == "queued"

    client.set(gate_key(namespace, "after-restart"), 1)
    restarted = workers.start("-c", "1")
    assert long_job.get(timeout=10) == "after-restart"
    rerun = events.wait_for(2, event="started", job=long_job.id)[1]
    assert rerun["attempt"] == 1
    assert rerun["ppid"] == restarted.pid


# Order -------------------------------------------------------------------------------------------


def test_one_child_runs_queued_jobs_by_priority_and_fifo_inside_a_priority(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    priorities = list(range(10))
    random.Random(7).shuffle(priorities)
    for turn in range(2):
        for priority in priorities:
            tasks.mark.apply_async((f"p{priority}-{turn}",), priority=priority)

    workers.start("-c", "1", "--prefetch", "0")

    ran = [event["label"] for event in events.wait_for(20, event="ran")]
    assert ran == [f"p{priority}-{turn}" for priority in range(9, -1, -1) for turn in range(2)]


def test_strict_queue_order_runs_every_high_job_before_any_low_one(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    for index in range(5):
        tasks.mark.apply_async((f"low-{index}",), queue="low")
    for index in range(5):
        tasks.mark.apply_async((f"high-{index}",), queue="high")

    workers.start("-Q", "high,low", "-c", "1", "--prefetch", "0")

    ran = [event["label"] for event in events.wait_for(10, event="ran")]
    assert ran == [f"high-{i}" for i in range(5)] + [f"low-{i}" for i in range(5)]


# Redis going away --------------------------------------------------------------------------------


def test_a_redis_restart_during_work_loses_no_job_and_the_worker_serves_on(
    namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "redis"
    server = EmbeddedServer(data_dir, appendonly=True, port=port).start()
    farm = Workers(server.url, namespace, tmp_path)
    tasks = build(server.url, namespace)
    try:
        worker = farm.start("-c", "2")
        results = tasks.app.enqueue_many(tasks.echo.s(i, 0.05) for i in range(50))
        assert results[0].get(timeout=10) == 0
        assert not results[-1].ready()  # about 1.2 s of work is left

        server.stop()
        worker.wait_for_log("retrying", timeout_s=10)
        server = EmbeddedServer(data_dir, appendonly=True, port=port).start()

        assert [result.get(timeout=30) for result in results] == list(range(50))
        assert tasks.echo.delay(99).get(timeout=10) == 99
        assert worker.running()
    finally:
        tasks.app.close()
        farm.close()
        server.stop()


# The task's view ---------------------------------------------------------------------------------


def test_a_bound_task_sees_its_job_and_its_log_lines_carry_the_job(
    tasks: Tasks, workers: Workers
) -> None:
    worker = workers.start("-Q", "special", "-c", "1", "--log-format", "json")
    result = tasks.describe.apply_async(priority=7, queue="special")

    seen = result.get(timeout=10)
    assert seen.pop("seconds_to_deadline") == pytest.approx(5.0, abs=1.0)  # its soft limit
    assert seen == {
        "id": result.id,
        "task": "describe",
        "attempt": 1,
        "max_retries": 3,
        "queue": "special",
        "priority": 7,
    }
    worker.wait_for_log(f"describing job {result.id}", timeout_s=5)
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    [logged] = [line for line in lines if line["message"] == f"describing job {result.id}"]
    assert logged["job_id"] == result.id
    assert logged["task"] == "describe"
    assert logged["attempt"] == 1


def test_a_running_job_sees_its_cancel_request_within_a_heartbeat(
    tasks: Tasks, workers: Workers, events: Events
) -> None:
    workers.start("-c", "1")
    result = tasks.until_cancelled.delay()
    events.wait_for(event="started", job=result.id)

    asked_at = time.time()
    assert result.cancel() is CancelCode.REQUESTED
    seen = events.wait_for(event="saw_cancel", job=result.id, timeout_s=LEASE_S + 5)[0]
    assert seen["time"] - asked_at < LEASE_S / 3 + SCHEDULING_S
    assert result.get(timeout=5) == "stopped"


# Pools -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["solo", "async"])
def test_an_in_process_pool_runs_sync_and_async_jobs_in_the_worker_process(
    pool: str, tasks: Tasks, workers: Workers
) -> None:
    worker = workers.start("--pool", pool, "-c", "2")

    assert tasks.add.delay(2, 3).get(timeout=10) == 5
    assert tasks.aadd.delay(2, 3).get(timeout=10) == 5
    assert tasks.where.delay().get(timeout=10)["pid"] == worker.pid
