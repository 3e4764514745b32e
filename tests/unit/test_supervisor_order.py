"""The supervisor's ordering promise: a job is acknowledged only after its follow-ups are sent.

A producer that sees a chain step finish waits next on the following step; if the ack went out
first, that step would not exist yet and the wait would end in `JobNotFound`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from errands import App, chain
from errands.broker.types import Enqueued, NewJob
from errands.testing import MemoryBroker
from errands.worker.execution import Executor
from errands.worker.pool import Assigned
from errands.worker.protocol import Finished
from errands.worker.queues import QueueSelection
from errands.worker.supervisor import Supervisor, WorkerConfig


class _HeldPool:
    """A pool that keeps what it is given, so the test decides when each job finishes."""

    def __init__(self) -> None:
        self.assigned: list[Assigned] = []

    def free_slots(self) -> int:
        return 2

    def idle_slots(self) -> int:
        return 2

    def hungry(self) -> bool:
        return True

    def submit(self, jobs: Sequence[Assigned]) -> None:
        self.assigned.extend(jobs)


async def test_a_job_that_finishes_while_follow_ups_are_sent_waits_for_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = MemoryBroker()
    app = App(broker=broker)

    @app.task(name="inc", queue="q")
    def inc(x: int) -> int:
        return x + 1

    chains = [chain(inc.s(1), inc.partial()).delay(), chain(inc.s(10), inc.partial()).delay()]
    supervisor = Supervisor(app, WorkerConfig(QueueSelection(("q",)), pool="solo"))
    pool = _HeldPool()
    supervisor.pool = pool  # type: ignore[assignment]
    await supervisor._exchange()
    first, second = pool.assigned
    executor = Executor(app, lambda _: False)

    def run(assigned: Assigned) -> Finished:
        prepared = executor.prepare(assigned.job)
        assert not isinstance(prepared, Finished)
        return executor.run_sync(prepared)

    enqueue = broker.acontinue
    finished_second = False

    async def enqueue_while_the_second_finishes(
        queue: str, jobs: Sequence[NewJob]
    ) -> list[Enqueued]:
        nonlocal finished_second
        if not finished_second:  # the pool reports it while the first one's step is on its way
            finished_second = True
            supervisor._on_finished([run(second)])
        return await enqueue(queue, jobs)

    monkeypatch.setattr(broker, "acontinue", enqueue_while_the_second_finishes)
    supervisor._on_finished([run(first)])

    for _ in range(2):
        await supervisor._exchange()
        for steps in chains:
            head, following = steps.steps
            if broker.job_state("q", head.id).finished:
                assert broker.job_state("q", following.id).state != "unknown"
    assert all(broker.job_state("q", steps.steps[0].id).finished for steps in chains)
