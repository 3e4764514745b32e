"""Re-runs and rolling deploys: a chain step is enqueued once, an unknown task's jobs wait.

- A chain step that runs again (its ack was lost) enqueues its successor once, whether the
  successor kept its result, let it expire, or never stored one (``ignore_result``): the step
  is sent under an idempotency key derived from its parent, whose window outlives them.
- In a rolling deploy producers may send a task that the running workers do not have yet: its
  jobs are deferred (no attempt spent) until a worker that has it takes them, and fail with
  `TaskNotFound` only once the app's ``unknown_task_window`` has passed.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers, wait_until

from errands import App, JobFailed, chain
from errands.broker.redis import RedisBroker
from errands.broker.types import Fetched
from errands.testing import run_jobs
from errands.worker.execution import Executor
from errands.worker.follow_ups import apply_follow_ups
from errands.worker.protocol import Finished, Job


@pytest.mark.parametrize("kept", ["ignored", "expired"])
def test_a_chain_step_run_twice_enqueues_its_successor_once(
    server: RedisServer, namespace: str, kept: str
) -> None:
    broker = RedisBroker(server.url, namespace=namespace)
    app = App(broker=broker)
    ran: list[int] = []

    @app.task(name="parent")
    def parent() -> int:
        return 1

    @app.task(name="child", ignore_result=kept == "ignored", result_ttl=0.001)
    def child(x: int) -> None:
        ran.append(x)

    sent = chain(parent.s(), child.partial()).delay()
    [delivery] = asyncio.run(_fetch(broker)).jobs
    executor = Executor(app, lambda _: False)
    prepared = executor.prepare(Job(delivery.id, delivery.payload, delivery.attempt))
    assert not isinstance(prepared, Finished)
    finished = executor.run_sync(prepared)
    asyncio.run(_follow_ups(app, finished))
    run_jobs(app, ["default"])  # the successor runs; no result of it is left
    assert ran == [1]
    # Its result lives 1 ms (the broker's clock): wait for it to go, not for a fixed time.
    step = sent.steps[1].id
    gone = lambda: broker.job_state("default", step).state == "unknown"  # noqa: E731
    wait_until(gone, 5, "the successor's result to expire")
    asyncio.run(_follow_ups(app, finished))  # the parent ran again: its step goes again
    assert broker.inspector.queue("default").ready == 0
    run_jobs(app, ["default"])
    assert ran == [1]
    broker.close()


async def _fetch(broker: RedisBroker) -> Fetched:
    try:
        return await broker.fetch("default", 1, 60_000, "w1")
    finally:
        await broker.aclose()


async def _follow_ups(app: App, finished: Finished) -> None:
    try:
        await apply_follow_ups(app, finished.follow_ups)
    finally:
        await app.broker.aclose()


@pytest.mark.timeout(60)
def test_a_task_the_workers_do_not_have_yet_waits_for_a_worker_that_does(
    tasks: FaultTasks, workers: Workers
) -> None:
    workers.start("-c", "1")  # the previous release: no new_task
    handle = tasks.new_task.delay(21)
    info = tasks.app.inspector.queue
    wait_until(lambda: info("default").stats.get("deferred", 0) >= 1, 15, "a deferral")
    assert handle.state in ("scheduled", "queued")  # waiting, not dead
    assert tasks.app.broker.job_state("default", handle.id).attempts == 0
    workers.start("-c", "1", env={"ERRANDS_TEST_NEW_TASKS": "1"})  # the new release
    assert handle.get(timeout=30) == 42
    stats = tasks.app.inspector.queue("default").stats
    assert stats.get("deferred", 0) >= 1
    assert stats.get("failed", 0) == 0


@pytest.mark.timeout(60)
def test_a_task_no_worker_gets_within_the_window_fails_with_task_not_found(
    tasks: FaultTasks, workers: Workers
) -> None:
    workers.start("-c", "1", env={"ERRANDS_TEST_UNKNOWN_WINDOW": "2"})
    handle = tasks.new_task.delay(21)
    with pytest.raises(JobFailed, match="TaskNotFound") as failure:
        handle.get(timeout=30)
    assert "no task named 'new_task'" in failure.value.error_message
    assert tasks.app.inspector.queue("default").stats.get("deferred", 0) >= 1
