"""A worker stops after SIGTERM even when one of its background loops loses a cancel."""

from __future__ import annotations

import asyncio

from errands import App
from errands.testing import MemoryBroker
from errands.worker.queues import QueueSelection
from errands.worker.supervisor import Supervisor, WorkerConfig


async def test_a_loop_that_swallows_its_first_cancel_does_not_keep_the_worker_running() -> None:
    app = App(broker=MemoryBroker())
    supervisor = Supervisor(app, WorkerConfig(QueueSelection(("q",)), pool="solo"))
    cancels_seen = 0

    async def loses_one_cancel() -> None:
        nonlocal cancels_seen
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancels_seen += 1
                if cancels_seen > 1:
                    raise
                # the cancel is taken for a timeout and retried, as a call's timeout could be

    supervisor.upkeep.chord_failures_loop = loses_one_cancel  # type: ignore[method-assign]
    serving = asyncio.Event()
    run = asyncio.create_task(supervisor.run(ready=serving.set))
    async with asyncio.timeout(10):
        await serving.wait()
    supervisor.request_stop()
    async with asyncio.timeout(10):
        await run
    assert cancels_seen == 2
