"""An idle worker's wait for work, with its fetch pipelined behind it, on a real Redis.

Redis runs the pipelined fetch the moment the wait ends, whatever the worker does meanwhile:
these tests show that the worker dispatches what it brings, and gives it back when stopping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest
import redis

from errands import App
from errands.worker.pool import Assigned
from errands.worker.protocol import Wait
from errands.worker.queues import QueueSelection
from errands.worker.supervisor import Supervisor, WorkerConfig


class _HeldPool:
    """A pool with one free slot that keeps what it is given."""

    def __init__(self) -> None:
        self.assigned: list[Assigned] = []

    def free_slots(self) -> int:
        return 1 - len(self.assigned)

    def idle_slots(self) -> int:
        return self.free_slots()

    def hungry(self) -> bool:
        return not self.assigned

    def submit(self, jobs: Sequence[Assigned]) -> None:
        self.assigned.extend(jobs)

    def wait_for_work(self, wait: Wait) -> bool:
        return False  # no executor of its own waits on Redis: the supervisor does

    def idle(self) -> bool:
        return True

    def stop(self) -> None:
        """Nothing runs here: nothing to stop."""


@pytest.fixture
async def app(app: App) -> AsyncIterator[App]:
    """The test app, its async connections closed on this test's loop."""
    yield app
    await app.broker.aclose()


def _blocked_clients(redis_url: str) -> set[str]:
    """The ids of the clients blocked on a BZPOPMIN now, whoever they are."""
    client = redis.Redis.from_url(redis_url)
    try:
        return {
            c["id"]
            for c in client.client_list()
            if c.get("cmd") == "bzpopmin" and "b" in c.get("flags", "")
        }
    finally:
        client.close()


def _wait_until_blocked(redis_url: str, others: set[str]) -> None:
    """Return once a client not in `others` blocks on a BZPOPMIN (checked, not slept on)."""
    deadline = time.monotonic() + 5
    while not _blocked_clients(redis_url) - others:
        if time.monotonic() > deadline:
            raise AssertionError("the supervisor never blocked on its wake key")
        time.sleep(0.005)


async def _blocked_supervisor(app: App, redis_url: str) -> tuple[Supervisor, _HeldPool]:
    supervisor = Supervisor(app, WorkerConfig(QueueSelection(("q",)), pool="solo"))
    pool = _HeldPool()
    supervisor.pool = pool  # type: ignore[assignment]
    await supervisor._exchange()  # nothing queued: the worker is drained
    others = _blocked_clients(redis_url)  # an idle worker elsewhere on this server, maybe
    asyncio.create_task(supervisor._idle())  # noqa: RUF006 - awaited through supervisor._wake
    await asyncio.to_thread(_wait_until_blocked, redis_url, others)
    return supervisor, pool


async def test_a_job_enqueued_while_the_worker_waits_is_dispatched_at_once(
    app: App, redis_url: str
) -> None:
    @app.task(name="job", queue="q")
    def job() -> None: ...

    supervisor, pool = await _blocked_supervisor(app, redis_url)
    sent = await job.adelay()
    assert supervisor._wake is not None
    await asyncio.wait({supervisor._wake}, timeout=5)
    assert supervisor._woken()
    assert [a.job.id for a in pool.assigned] == [sent.id]
    assert await sent.astate() == "active"


async def test_a_job_the_wait_leases_while_the_worker_stops_is_given_back(
    app: App, redis_url: str
) -> None:
    @app.task(name="job", queue="q")
    def job() -> None: ...

    supervisor, pool = await _blocked_supervisor(app, redis_url)
    supervisor.request_stop()
    # Arriving now (a job given back by this very worker arms the wake the same way), it is
    # leased by the fetch that rides behind the wait, before the worker can cancel anything:
    # the blocking send keeps the loop from reading that reply first.
    sent = job.delay()
    await supervisor._end_wait()
    await supervisor._flush_final()
    assert pool.assigned == []
    assert await sent.astate() == "queued"
    assert app.inspector.queue("q").active == 0
