"""Checks of what operators do to a running fleet: list it, purge waiting jobs, pause queues.

``errands workers``, ``errands purge``, ``errands pause`` and ``errands resume`` stand on these,
so every broker answers them alike.
"""

from __future__ import annotations

import msgspec

from errands.broker.types import CancelCode, Lease
from errands.conformance.jobs import Q, job, take
from errands.conformance.subject import LONG_MS, SHORT_MS, Check, Subject

__all__ = ["CHECKS"]

_OTHER = Q + "-other"


def _info(lease_ms: int, **fields: object) -> bytes:
    return msgspec.json.encode({"host": "box", "pid": 7, "lease": lease_ms, **fields})


async def check_the_fleet_lists_each_live_worker_once_across_its_queues(s: Subject) -> None:
    """`fleet` pages every live worker by id, once however many queues it serves."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    [held] = await take(b, 1, worker="w-2")
    both = _info(LONG_MS, queues=[Q, _OTHER], held=1)
    await b.heartbeat(Q, "w-2", both, [Lease(held.id, held.token)], LONG_MS)
    await b.heartbeat(_OTHER, "w-2", both, [], LONG_MS)
    await b.heartbeat(_OTHER, "w-1", _info(LONG_MS, queues=[_OTHER]), [], LONG_MS)
    await b.heartbeat(Q, "w-3", _info(LONG_MS, queues=[Q]), [], LONG_MS)

    first = b.inspector.fleet(limit=2)
    assert [w.id for w in first.items] == ["w-1", "w-2"], f"the first page: {first}"
    assert first.cursor == "w-2", f"the first page's cursor: {first.cursor}"
    two = first.items[1]
    assert (two.held, two.holding, two.lease_s) == (1, ["a"], LONG_MS / 1000), f"w-2: {two}"
    rest = await b.inspector.afleet(after=first.cursor, limit=2)
    assert [w.id for w in rest.items] == ["w-3"], f"the last page: {rest}"
    assert rest.cursor is None, f"the last page has no cursor: {rest.cursor}"


async def check_a_worker_leaves_the_lists_when_it_leaves_or_its_lease_passes(s: Subject) -> None:
    """A worker that leaves goes at once; one that stops beating goes once its lease passed."""
    b = s.broker
    await b.heartbeat(Q, "brief", _info(SHORT_MS), [], SHORT_MS)
    await b.heartbeat(Q, "steady", _info(LONG_MS), [], LONG_MS)
    await b.heartbeat(Q, "leaving", _info(LONG_MS), [], LONG_MS)
    assert b.inspector.queue(Q).consumers == 3, "three workers beat"
    assert await b.leave(Q, "leaving"), "a listed worker that leaves is taken off"
    assert not await b.leave(Q, "leaving"), "leaving twice finds nothing the second time"
    s.elapse(SHORT_MS * 2)
    listed = [w.id for w in b.inspector.workers(Q).items]
    assert listed == ["steady"], f"only the worker within its lease is listed: {listed}"
    assert b.inspector.queue(Q).consumers == 1, "only a live worker counts as a consumer"
    assert [w.id for w in b.inspector.fleet().items] == ["steady"], "the fleet agrees"


async def check_purge_ready_deletes_waiting_jobs_in_batches_never_active_ones(
    s: Subject,
) -> None:
    """`purge_ready` deletes at most `limit` ready jobs a call (delayed ones when asked)."""
    b = s.broker
    b.enqueue(Q, [job("running")])
    [running] = await take(b, 1)
    b.enqueue(Q, [job(f"r{i}") for i in range(5)])
    b.enqueue(Q, [job("later", delay_ms=LONG_MS), job("keyed", idempotency_key="k")])
    assert b.purge_ready(Q, limit=2) == 2, "a call deletes at most its limit"
    assert await b.apurge_ready(Q, limit=10) == 4, "then the rest of ready"
    assert b.purge_ready(Q) == 0, "none left: 0"
    summary = b.inspector.queue(Q)
    assert (summary.ready, summary.delayed, summary.active) == (0, 1, 1), f"left: {summary}"
    assert b.inspector.job(Q, "r0") is None, "a purged job's record is gone"
    assert b.purge_ready(Q, delayed=True) == 1, "with delayed, the delayed job goes too"
    assert b.inspector.queue(Q).delayed == 0, "no delayed job is left"
    assert b.inspector.job(Q, running.id) is not None, "the active job is untouched"
    [again] = b.enqueue(Q, [job("keyed-again", idempotency_key="k")])
    assert again.created, "the key of a purged job may send a new one"
    assert b.cancel(Q, "r1") == CancelCode.NOT_FOUND, "a purged job is unknown"


async def check_pausing_says_whether_it_changed_the_queue(s: Subject) -> None:
    """`set_paused` returns True when it paused (or resumed), False when it already was so."""
    b = s.broker
    assert b.set_paused(Q, True), "pausing a running queue changes it"
    assert not await b.aset_paused(Q, True), "pausing a paused queue changes nothing"
    assert b.inspector.queue(Q).paused, "the queue shows paused"
    assert b.set_paused(Q, False), "resuming a paused queue changes it"
    assert not b.set_paused(Q, False), "resuming a running queue changes nothing"
    assert not b.inspector.queue(Q).paused, "the queue shows running"


CHECKS: tuple[Check, ...] = (
    check_the_fleet_lists_each_live_worker_once_across_its_queues,
    check_a_worker_leaves_the_lists_when_it_leaves_or_its_lease_passes,
    check_purge_ready_deletes_waiting_jobs_in_batches_never_active_ones,
    check_pausing_says_whether_it_changed_the_queue,
)
