"""errands.testing.run_jobs: users test their tasks in-process, with no server."""

from __future__ import annotations

import asyncio

import pytest

from errands import App, JobFailed, TaskContext
from errands.testing import MemoryBroker, run_jobs


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_run_jobs_runs_queued_jobs_and_stores_their_results() -> None:
    app = App(broker=MemoryBroker())

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    results = [add.delay(i, 1) for i in range(3)]
    assert run_jobs(app) == 3
    assert [r.get(timeout=0) for r in results] == [1, 2, 3]


def test_run_jobs_retries_a_failing_job_once_the_clock_passes_its_backoff() -> None:
    clock = Clock()
    app = App(broker=MemoryBroker(clock=clock))

    @app.task(bind=True, max_retries=1, retry_backoff=10, retry_jitter=False)
    def flaky(ctx: TaskContext) -> int:
        if ctx.attempt == 1:
            raise ConnectionError("down")
        return ctx.attempt

    result = flaky.delay()
    assert run_jobs(app) == 1
    assert result.state == "scheduled"
    clock.now += 10.001
    assert run_jobs(app) == 1
    assert result.get(timeout=0) == 2


def test_a_job_that_fails_for_good_raises_its_error_from_get() -> None:
    app = App(broker=MemoryBroker())

    @app.task(max_retries=0)
    def broken() -> None:
        raise ValueError("no customer")

    result = broken.delay()
    run_jobs(app)
    with pytest.raises(JobFailed, match="ValueError: no customer"):
        result.get(timeout=0)


async def test_async_tasks_run_too() -> None:
    app = App(broker=MemoryBroker())

    @app.task
    async def double(x: int) -> int:
        return 2 * x

    result = await double.adelay(21)
    assert await asyncio.to_thread(run_jobs, app) == 1
    assert await result.aget(timeout=0) == 42
