"""The process pool while it stops: jobs that reach it then are given back, never charged.

A fetch can be under way when the worker is told to stop; what it brings must not go to
children that are exiting, where it would be counted as lost with a running job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from errands.worker.pool import Assigned, PoolEvents
from errands.worker.pool_process import ProcessPool
from errands.worker.protocol import Finished, Job
from tests.integration.worker_app import Tasks


async def test_jobs_submitted_after_stop_are_given_back_uncharged(
    tasks: Tasks, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The children build the test app from these, as a worker's children do.
    monkeypatch.setenv("ERRANDS_BROKER_URL", redis_url)
    monkeypatch.setenv("ERRANDS_TEST_NAMESPACE", namespace)
    finished: list[Finished] = []
    given_back: list[str] = []

    def took(queue: str, jobs: Sequence[Job], tokens: Sequence[str], more: bool) -> list[Assigned]:
        raise AssertionError("no child waits on Redis in this test")

    events = PoolEvents(finished.extend, given_back.extend, took, lambda: None, lambda *_: None)
    pool = ProcessPool(tasks.app, "tests.integration.worker_app:app", events, concurrency=2)
    await pool.start()
    pool.stop()
    late = [Assigned(Job(f"late-{i}", b"{}", 1), "add", 10.0, is_async=False) for i in range(4)]
    pool.submit(late)
    async with asyncio.timeout(10):
        await pool.close()
    assert sorted(given_back) == [job.job.id for job in late]
    assert finished == []  # nothing counted as lost with a child
