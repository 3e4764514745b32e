"""Helpers to test code that uses errands, with no Redis server and no worker process.

Give your app an in-memory broker; it keeps the exact semantics of the Redis one (priorities,
delays, leases, retries, idempotency, results), and its clock can be moved by hand. Then run
the queued jobs in your test's process with `run_jobs`, as a worker would::

    from errands import App
    from errands.testing import MemoryBroker, run_jobs

    app = App(broker=MemoryBroker())

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(1, 2)
    assert run_jobs(app) == 1
    assert result.get(timeout=0) == 3

To test delays and retry backoff without sleeping, pass a clock (seconds, like `time.time`)
that you move yourself: ``MemoryBroker(clock=lambda: now[0])``; a retried job runs again in
`run_jobs` once the clock has passed its due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from errands.app import App
from errands.broker.memory import MemoryBroker
from errands.broker.types import Outcome
from errands.worker.execution import Executor
from errands.worker.follow_ups import apply_follow_ups
from errands.worker.protocol import Finished, Job

__all__ = ["MemoryBroker", "run_jobs"]

_WORKER_ID = "errands.testing"


async def _run_batch(app: App, executor: Executor, queue: str, limit: int) -> int:
    fetched = await app.broker.fetch(queue, limit, int(app.lease * 1000), _WORKER_ID)
    outcomes: list[Outcome] = []
    for delivery in fetched.jobs:
        prepared = executor.prepare(Job(delivery.id, delivery.payload, delivery.attempt))
        if isinstance(prepared, Finished):
            finished = prepared
        elif prepared.is_async:
            finished = await executor.run_async(prepared)
        else:
            finished = executor.run_sync(prepared)
        await apply_follow_ups(app, finished.follow_ups)  # before the ack
        outcomes.append(
            Outcome(
                delivery.id,
                delivery.token,
                finished.kind,
                finished.outcome,
                finished.retry_delay_ms,
            )
        )
    if outcomes:
        await app.broker.ack(queue, outcomes)
        await app.broker.adeliver_chord_failures(queue)  # a member that died fails its chord
    return len(outcomes)


def run_jobs(app: App, queues: Sequence[str] | None = None, *, max_jobs: int = 10_000) -> int:
    """Run the jobs that are ready now, in this process, until none is left; return how many.

    Jobs a task enqueues while running are run too; a retry runs again once it is due by the
    broker's clock. Soft and hard time limits are not enforced here. Works with any broker;
    with a `MemoryBroker` no server is needed.

    Args:
        app: the app whose queued jobs to run.
        queues: the queues to drain (default: every queue the broker knows).
        max_jobs: a bound, so a task that enqueues itself forever still ends the test.
    """
    executor = Executor(app, lambda _job_id: False)

    async def drain() -> int:
        try:
            return await drain_queues()
        finally:
            await app.broker.aclose()  # its async connections belong to this event loop

    async def drain_queues() -> int:
        ran = 0
        while ran < max_jobs:
            names = list(queues) if queues is not None else app.broker.known_queues()
            batch = 0
            for queue in names:
                batch += await _run_batch(app, executor, queue, min(100, max_jobs - ran - batch))
            if batch == 0:
                return ran
            ran += batch
        return ran

    return asyncio.run(drain())
