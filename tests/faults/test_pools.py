"""No task, sync or async, can starve the heartbeat, and no result can break the process.

- In ``--pool async`` and ``--pool solo`` user code runs on a loop and threads of its own, so an
  ``async def`` task that blocks (``time.sleep``) past its lease keeps it: no other worker
  starts it meanwhile.
- A result that cannot be encoded (nested 3,000 deep) fails its attempt like an error raised
  by the task, is not retried (the same code returns the same), and the process that ran it
  goes on: its side effects ran once.
"""

from __future__ import annotations

import time

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer
from tests.integration.workers import Events, Workers

from errands import JobFailed

ONE_S = ("--lease", "1")
ONE_S_ENV = {"ERRANDS_TEST_LEASE": "1"}
BLOCK_S = 3.5  # more than three leases


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", ["async", "solo"])
def test_an_async_task_that_blocks_past_its_lease_keeps_it(
    server: RedisServer,
    tasks: FaultTasks,
    workers: Workers,
    events: Events,
    namespace: str,
    pool: str,
) -> None:
    blocking, watching = workers.start_many(2, "--pool", pool, "-c", "4", *ONE_S)
    handle = tasks.ablock.delay(BLOCK_S)
    events.wait_for(1, event="started", job=handle.id)
    client = server.client()
    active = f"{namespace}:{{default}}:active"
    # While the task blocks, its lease keeps being renewed: its deadline stays ahead of the
    # server's clock (a lease of 1 s, renewed every third of it).
    for _ in range(int(BLOCK_S / 2 / 0.1)):
        seconds, micros = client.time()
        deadline = client.zscore(active, handle.id)
        assert deadline is not None, "the job left active while it ran"
        assert deadline > seconds * 1000 + micros // 1000, "its lease ran out while it blocked"
        time.sleep(0.1)
    client.close()
    assert handle.get(timeout=30) == BLOCK_S
    events.drain()
    assert len(events.matching(event="started", job=handle.id)) == 1, "a second worker ran it"
    assert tasks.add.delay(1, 1).get(timeout=10) == 2
    for worker in (blocking, watching):
        assert "lost the lease" not in worker.log()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("pool", "task"),
    [("process", "deep"), ("process", "adeep"), ("async", "adeep"), ("solo", "deep")],
)
def test_a_result_nested_too_deep_fails_its_job_once_and_the_process_goes_on(
    tasks: FaultTasks, workers: Workers, events: Events, pool: str, task: str
) -> None:
    workers.start("--pool", pool, "-c", "1", *ONE_S, env=ONE_S_ENV)
    before = tasks.where.delay().get(timeout=10)
    handle = getattr(tasks, task).delay(3000)
    with pytest.raises(JobFailed, match="ArgumentError") as failure:
        handle.get(timeout=15)
    assert "more than 100 deep" in failure.value.error_message
    assert tasks.where.delay().get(timeout=10) == before  # the same process, alive
    events.drain()
    assert len(events.matching(event="started", job=handle.id)) == 1  # not retried
    assert tasks.app.inspector.queue("default").dead == 1
