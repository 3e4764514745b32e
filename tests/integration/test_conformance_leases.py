"""Leases on both brokers: expiry, stale tokens, stalls and losses, heartbeats, late outcomes.

A lease that expires while a heartbeat had seen its job running is a stall, charged against the
job's max_stalls; one that expires before (its worker died with it queued) is a loss, which only
ends the job dead once it happened LOST_SPARE times more than max_stalls allows.
"""

from __future__ import annotations

import json

from errands.broker.base import Broker
from errands.broker.types import AckCode, CancelCode, Delivery, HeartbeatReply, JobSnapshot, Lease
from errands.states import JobState
from tests.integration.conformance import (
    LONG_MS,
    SHORT_MS,
    Q,
    Subject,
    defer,
    fail,
    ids,
    job,
    ok,
    outcome_of,
    retry,
    take,
)

LOST_SPARE = 5  # as in 00_shared.lua


async def seen_running(b: Broker, d: Delivery) -> None:
    """A heartbeat that reports `d` started, renewing nothing beyond a short lease."""
    reply = await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], SHORT_MS, {d.id})
    assert reply.lost == []


async def test_an_expired_lease_is_reaped_back_before_later_jobs_of_its_priority(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b"), job("c")])
    assert await ids(b, 1, lease_ms=SHORT_MS) == ["a"]
    any_broker.elapse(SHORT_MS)
    [d, *rest] = await take(b, 3, worker="w2")
    assert (d.id, d.attempt, d.token) == ("a", 1, "2")  # the attempt is refunded
    assert [r.id for r in rest] == ["b", "c"]
    assert b.info(Q).stats == {"enqueued": 3, "lost": 1}  # never seen running: no stall


async def test_a_lease_seen_running_that_expires_is_a_stall(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b, lease_ms=SHORT_MS)
    await seen_running(b, d)
    any_broker.elapse(SHORT_MS)
    [again] = await take(b, worker="w2")
    assert (again.id, again.attempt, again.token) == ("a", 1, "2")
    assert b.info(Q).stats == {"enqueued": 1, "stalled": 1}


async def test_a_job_asked_to_stop_whose_worker_died_ends_cancelled_not_rerun(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    await take(b, lease_ms=SHORT_MS)
    assert b.cancel(Q, "a") == CancelCode.REQUESTED
    any_broker.elapse(SHORT_MS)
    assert await take(b, worker="w2") == []
    assert b.job_state(Q, "a").state == "cancelled"


async def test_a_released_job_that_was_asked_to_stop_ends_cancelled(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert b.cancel(Q, "a") == CancelCode.REQUESTED
    assert await b.release(Q, [Lease(d.id, d.token)]) == 0
    assert b.job_state(Q, "a").state == "cancelled"
    assert b.info(Q).ready == 0


async def test_an_ack_with_a_stale_token_is_refused_after_another_worker_took_the_job(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", max_stalls=5)])
    [first] = await take(b, lease_ms=SHORT_MS, worker="w1")
    any_broker.elapse(SHORT_MS)
    [second] = await take(b, worker="w2")
    assert second.id == "a"
    assert await b.ack(Q, [ok(first)]) == [AckCode.STALE]
    assert b.job_state(Q, "a").state == "active"
    assert await b.ack(Q, [ok(second)]) == [AckCode.SUCCEEDED]


async def test_a_late_success_is_taken_while_nobody_took_the_job_again(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b")])
    [d] = await take(b, lease_ms=SHORT_MS)
    any_broker.elapse(SHORT_MS)
    await b.maintain(Q, "w2", LONG_MS)  # reaps it back to ready; nobody fetches it
    assert b.job_state(Q, "a").state == "queued"
    assert await b.ack(Q, [ok(d, "late")]) == [AckCode.SUCCEEDED]
    assert outcome_of(b.job_state(Q, "a"))["result"] == "late"
    assert await ids(b) == ["b"]  # it does not run again


async def test_a_late_failure_is_refused_and_the_job_runs_again(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b, lease_ms=SHORT_MS)
    any_broker.elapse(SHORT_MS)
    await b.maintain(Q, "w2", LONG_MS)
    assert await b.ack(Q, [retry(d), fail(d)]) == [AckCode.STALE, AckCode.STALE]
    assert await ids(b) == ["a"]


async def test_a_released_job_takes_no_late_outcome(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert await b.release(Q, [Lease(d.id, d.token)]) == 1
    assert await b.ack(Q, [ok(d)]) == [AckCode.STALE]
    assert b.job_state(Q, "a").state == "queued"


async def test_a_job_that_stalls_more_than_max_stalls_goes_dead_as_jobstalled(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("poison", max_stalls=1)])
    for _ in range(2):  # one stall is tolerated, the second kills it
        [d] = await take(b, lease_ms=SHORT_MS)
        await seen_running(b, d)
        any_broker.elapse(SHORT_MS)
    assert await ids(b) == []
    state = b.job_state(Q, "poison")
    assert state.state == "failed"
    outcome = outcome_of(state)
    assert outcome["error"]["type"] == "errands.errors.JobStalled"
    assert "expired 2 times while it ran, and 0 times before" in outcome["error"]["message"]
    # Stalls are counted apart from attempts: the stalled run is its one attempt.
    assert (outcome["attempts"], outcome["deliveries"]) == (1, 2)
    assert abs(outcome["finished_at"] - any_broker.now_ms() / 1000) < 5
    assert [dead_id for dead_id, _, _ in b.dead_jobs(Q)] == ["poison"]
    assert b.info(Q).stats == {"enqueued": 1, "stalled": 2, "failed": 1}


async def test_leases_lost_before_the_job_ran_end_it_only_after_a_bounded_number(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("queued-behind", max_stalls=1)])
    allowed = 1 + LOST_SPARE
    for _ in range(allowed):  # its worker dies each time before a heartbeat saw it run
        assert await ids(b, lease_ms=SHORT_MS) == ["queued-behind"]
        any_broker.elapse(SHORT_MS)
    [d] = await take(b)  # still alive, attempts untouched
    assert d.attempt == 1
    assert await b.ack(Q, [ok(d)]) == [AckCode.SUCCEEDED]
    assert b.info(Q).stats["lost"] == allowed

    b.enqueue(Q, [job("kills-its-worker", max_stalls=1)])
    for _ in range(allowed + 1):
        assert await ids(b, lease_ms=SHORT_MS) == ["kills-its-worker"]
        any_broker.elapse(SHORT_MS)
    assert await ids(b) == []
    outcome = outcome_of(b.job_state(Q, "kills-its-worker"))
    assert outcome["error"]["type"] == "errands.errors.JobStalled"
    assert outcome["deliveries"] == allowed + 1


async def test_a_deferred_job_waits_without_spending_an_attempt(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", max_attempts=1)])
    for _ in range(3):
        [d] = await take(b)
        assert d.attempt == 1
        assert await b.ack(Q, [defer(d, SHORT_MS)]) == [AckCode.RETRYING]
        assert b.job_state(Q, "a") == JobSnapshot(JobState.SCHEDULED, None, 0)
        any_broker.elapse(SHORT_MS)
    assert b.info(Q).stats == {"enqueued": 1, "deferred": 3}


async def test_a_deferred_job_asked_to_stop_ends_cancelled(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert b.cancel(Q, "a") == CancelCode.REQUESTED
    assert await b.ack(Q, [defer(d)]) == [AckCode.CANCELLED]


async def test_a_heartbeat_keeps_a_job_leased_past_its_original_lease(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    lease_ms = 400
    b.enqueue(Q, [job("a")])
    [d] = await take(b, lease_ms=lease_ms)
    any_broker.elapse(250)
    reply = await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], lease_ms)
    assert reply == HeartbeatReply(lost=[], cancelled=[])
    any_broker.elapse(250)  # past the first lease, inside the renewed one
    assert await take(b, worker="w2") == []
    assert b.info(Q).active == 1
    assert await b.ack(Q, [ok(d)]) == [AckCode.SUCCEEDED]


async def test_a_heartbeat_reports_leases_the_worker_lost(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", max_stalls=5)])
    [d] = await take(b, lease_ms=SHORT_MS, worker="w1")
    any_broker.elapse(SHORT_MS)
    await take(b, worker="w2")
    leases = [Lease(d.id, d.token), Lease("never-seen", "1")]
    reply = await b.heartbeat(Q, "w1", b"{}", leases, LONG_MS)
    assert reply == HeartbeatReply(lost=["a", "never-seen"], cancelled=[])


async def test_a_heartbeat_records_the_worker_and_its_queue(any_broker: Subject) -> None:
    b = any_broker.broker
    await b.heartbeat(Q, "w1", b'{"host": "h1", "seen": 1}', [], LONG_MS)
    [(worker, raw)] = b.info(Q).workers.items()
    info = json.loads(raw)
    assert (worker, info["host"]) == ("w1", "h1")
    assert info["seen"] > 1_000_000_000_000  # stamped with the broker's clock, in ms
    assert b.known_queues() == [Q]


async def test_release_gives_the_job_back_to_its_place_without_spending_an_attempt(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b")])
    [d] = await take(b)
    assert await b.release(Q, [Lease(d.id, d.token)]) == 1
    assert b.job_state(Q, "a") == JobSnapshot(JobState.QUEUED, None, 0)
    [again, other] = await take(b, 2)
    assert (again.id, again.attempt, again.token, other.id) == ("a", 1, "2", "b")


async def test_release_skips_a_lease_the_worker_no_longer_holds(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert await b.release(Q, [Lease(d.id, "99"), Lease("ghost", "1")]) == 0
    assert b.job_state(Q, "a").state == "active"
