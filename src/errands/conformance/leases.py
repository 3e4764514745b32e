"""Checks of leases: expiry, stale tokens, stalls and losses, heartbeats, late outcomes, release.

A lease that expires while a heartbeat had seen its job running is a stall, charged against the
job's max_stalls; one that expires before (its worker died with it queued) is a loss, which only
ends the job dead once it happened LOST_SPARE times more than max_stalls allows.
"""

from __future__ import annotations

from errands.broker.base import Broker
from errands.broker.types import AckCode, Delivery, HeartbeatReply, JobSnapshot, Lease
from errands.conformance.jobs import (
    Q,
    asked_to_stop,
    defer,
    fail,
    ids,
    job,
    ok,
    outcome_of,
    retry,
    take,
    take_one,
)
from errands.conformance.subject import LONG_MS, SHORT_MS, Check, Subject
from errands.states import JobState

__all__ = ["CHECKS", "LOST_SPARE"]

LOST_SPARE = 5  # losses a job is allowed beyond its max_stalls (00_shared.lua)
_CLOCK_SLACK_MS = 5_000  # a server's clock against ours, for the times a broker stamps


async def seen_running(b: Broker, d: Delivery) -> None:
    """A heartbeat that reports `d` started, renewing nothing beyond a short lease."""
    reply = await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], SHORT_MS, {d.id})
    assert reply.lost == [], f"the heartbeat of a held lease reported it lost: {reply}"


async def check_an_expired_lease_is_reaped_back_before_later_jobs_of_its_priority(
    s: Subject,
) -> None:
    """An expired lease puts its job back ahead of its priority; the attempt is refunded."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b"), job("c")])
    got = await ids(b, 1, lease_ms=SHORT_MS)
    assert got == ["a"], f"the first fetch should hand out a: {got}"
    s.elapse(SHORT_MS)
    fetched = await take(b, 3, worker="w2")
    assert [d.id for d in fetched] == ["a", "b", "c"], f"reaped a comes first: {fetched}"
    d = fetched[0]
    assert (d.attempt, d.token) == (1, "2"), f"the attempt is refunded, the token new: {d}"
    stats = b.inspector.queue(Q).stats
    assert stats == {"enqueued": 3, "lost": 1}, f"never seen running, a loss: {stats}"


async def check_a_lease_seen_running_that_expires_is_a_stall(s: Subject) -> None:
    """A lease that expires after a heartbeat saw its job start counts as a stall."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    d = await take_one(b, lease_ms=SHORT_MS)
    await seen_running(b, d)
    s.elapse(SHORT_MS)
    again = await take_one(b, worker="w2")
    got = (again.id, again.attempt, again.token)
    assert got == ("a", 1, "2"), f"the stalled job's (id, attempt, token): {got}"
    stats = b.inspector.queue(Q).stats
    assert stats == {"enqueued": 1, "stalled": 1}, f"counters: {stats}"


async def check_a_job_asked_to_stop_whose_worker_died_ends_cancelled_not_rerun(
    s: Subject,
) -> None:
    """A job asked to stop whose lease then expires ends cancelled, not handed out again."""
    b = s.broker
    await asked_to_stop(b, lease_ms=SHORT_MS)
    s.elapse(SHORT_MS)
    got = await take(b, worker="w2")
    assert got == [], f"a job asked to stop was handed out again: {got}"
    state = b.job_state(Q, "a").state
    assert state == "cancelled", f"it should read cancelled, not {state}"


async def check_a_released_job_that_was_asked_to_stop_ends_cancelled(s: Subject) -> None:
    """Releasing a job asked to stop ends it cancelled instead of queueing it again."""
    b = s.broker
    d = await asked_to_stop(b)
    released = await b.release(Q, [Lease(d.id, d.token)])
    assert released == 0, f"a job asked to stop is not given back: released {released}"
    state = b.job_state(Q, "a").state
    assert state == "cancelled", f"it should read cancelled, not {state}"
    assert b.inspector.queue(Q).ready == 0, "nothing should be ready"


async def check_an_ack_with_a_stale_token_is_refused_after_another_worker_took_the_job(
    s: Subject,
) -> None:
    """Once another worker holds the job, the first worker's outcome answers STALE."""
    b = s.broker
    b.enqueue(Q, [job("a", max_stalls=5)])
    first = await take_one(b, lease_ms=SHORT_MS, worker="w1")
    s.elapse(SHORT_MS)
    second = await take_one(b, worker="w2")
    assert second.id == "a", f"w2 should get a again, not {second.id}"
    codes = await b.ack(Q, [ok(first)])
    assert codes == [AckCode.STALE], f"the outcome with the old token answered {codes}"
    state = b.job_state(Q, "a").state
    assert state == "active", f"w2's run goes on: the job reads {state}"
    codes = await b.ack(Q, [ok(second)])
    assert codes == [AckCode.SUCCEEDED], f"w2's outcome answered {codes}"


async def check_a_late_success_is_taken_while_nobody_took_the_job_again(s: Subject) -> None:
    """A success acked after the lease was reaped is taken while the job waits in ready."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    d = await take_one(b, lease_ms=SHORT_MS)
    s.elapse(SHORT_MS)
    await b.maintain(Q, "w2", LONG_MS)  # reaps it back to ready; nobody fetches it
    state = b.job_state(Q, "a").state
    assert state == "queued", f"the reaped job should read queued, not {state}"
    codes = await b.ack(Q, [ok(d, "late")])
    assert codes == [AckCode.SUCCEEDED], f"a late success answered {codes}"
    result = outcome_of(b.job_state(Q, "a")).get("result")
    assert result == "late", f"the late result should be kept, not {result!r}"
    got = await ids(b)
    assert got == ["b"], f"the job that succeeded late must not run again: {got}"


async def check_a_late_failure_is_refused_and_the_job_runs_again(s: Subject) -> None:
    """A retry or failure acked after the lease was reaped answers STALE; the job runs again."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    d = await take_one(b, lease_ms=SHORT_MS)
    s.elapse(SHORT_MS)
    await b.maintain(Q, "w2", LONG_MS)
    codes = await b.ack(Q, [retry(d), fail(d)])
    assert codes == [AckCode.STALE, AckCode.STALE], f"late retry and failure answered {codes}"
    got = await ids(b)
    assert got == ["a"], f"the job should run again: {got}"


async def check_a_released_job_takes_no_late_outcome(s: Subject) -> None:
    """An outcome of a job its worker released answers STALE; the job stays queued."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    d = await take_one(b)
    released = await b.release(Q, [Lease(d.id, d.token)])
    assert released == 1, f"release of a held lease should give 1 job back, not {released}"
    codes = await b.ack(Q, [ok(d)])
    assert codes == [AckCode.STALE], f"an outcome after release answered {codes}"
    state = b.job_state(Q, "a").state
    assert state == "queued", f"the released job should read queued, not {state}"


async def check_a_job_that_stalls_more_than_max_stalls_goes_dead_as_jobstalled(
    s: Subject,
) -> None:
    """A stall past max_stalls sends the job dead with a JobStalled error saying how often."""
    b = s.broker
    b.enqueue(Q, [job("poison", max_stalls=1)])
    for _ in range(2):  # one stall is tolerated, the second kills it
        await seen_running(b, await take_one(b, lease_ms=SHORT_MS))
        s.elapse(SHORT_MS)
    got = await ids(b)
    assert got == [], f"the job stalled twice with max_stalls=1 was handed out: {got}"
    state = b.job_state(Q, "poison")
    assert state.state == "failed", f"the job should read failed, not {state}"
    outcome = outcome_of(state)
    error = outcome["error"]
    assert error["type"] == "errands.errors.JobStalled", f"its error: {error}"
    said = "expired 2 times while it ran, and 0 times before"
    assert said in error["message"], f"the message should say {said!r}: {error['message']!r}"
    # Stalls are counted apart from attempts: the stalled run is its one attempt.
    got_counts = (outcome["attempts"], outcome["deliveries"])
    assert got_counts == (1, 2), f"(attempts, deliveries) = {got_counts}"
    finished_ms = outcome["finished_at"] * 1000
    now_ms = s.now_ms()
    assert abs(finished_ms - now_ms) < _CLOCK_SLACK_MS, f"finished at {finished_ms}, now {now_ms}"
    dead = [d.id for d in b.inspector.dead(Q).items]
    assert dead == ["poison"], f"the dead set: {dead}"
    stats = b.inspector.queue(Q).stats
    wanted = {"enqueued": 1, "stalled": 2, "failed": 1}
    assert stats == wanted, f"counters: {stats}, not {wanted}"


async def check_leases_lost_before_the_job_ran_end_it_only_after_a_bounded_number(
    s: Subject,
) -> None:
    """Losses (leases expired before a run was seen) end a job only past max_stalls+LOST_SPARE."""
    b = s.broker
    b.enqueue(Q, [job("queued-behind", max_stalls=1)])
    allowed = 1 + LOST_SPARE
    for i in range(allowed):  # its worker dies each time before a heartbeat saw it run
        got = await ids(b, lease_ms=SHORT_MS)
        assert got == ["queued-behind"], f"after {i} losses of {allowed} allowed: {got}"
        s.elapse(SHORT_MS)
    d = await take_one(b)
    assert d.attempt == 1, f"losses spend no attempt: attempt {d.attempt}"
    codes = await b.ack(Q, [ok(d)])
    assert codes == [AckCode.SUCCEEDED], f"its success answered {codes}"
    lost = b.inspector.queue(Q).stats.get("lost")
    assert lost == allowed, f"the lost counter should be {allowed}, not {lost}"

    b.enqueue(Q, [job("kills-its-worker", max_stalls=1)])
    for i in range(allowed + 1):
        got = await ids(b, lease_ms=SHORT_MS)
        assert got == ["kills-its-worker"], f"after {i} losses: {got}"
        s.elapse(SHORT_MS)
    got = await ids(b)
    assert got == [], f"a job lost {allowed + 1} times should be dead: {got}"
    outcome = outcome_of(b.job_state(Q, "kills-its-worker"))
    error_type = outcome["error"]["type"]
    assert error_type == "errands.errors.JobStalled", f"its error type: {error_type}"
    deliveries = outcome["deliveries"]
    assert deliveries == allowed + 1, f"deliveries {deliveries}, not {allowed + 1}"


async def check_a_deferred_job_waits_without_spending_an_attempt(s: Subject) -> None:
    """A defer outcome schedules the job again as scheduled, its attempt not spent."""
    b = s.broker
    b.enqueue(Q, [job("a", max_attempts=1)])
    for i in range(3):
        d = await take_one(b)
        assert d.attempt == 1, f"after {i} deferrals the attempt is {d.attempt}, not 1"
        codes = await b.ack(Q, [defer(d, SHORT_MS)])
        assert codes == [AckCode.RETRYING], f"a defer outcome answered {codes}"
        state = b.job_state(Q, "a")
        wanted = JobSnapshot(JobState.SCHEDULED, None, 0)
        assert state == wanted, f"a deferred job reads {state}, not {wanted}"
        s.elapse(SHORT_MS)
    stats = b.inspector.queue(Q).stats
    assert stats == {"enqueued": 1, "deferred": 3}, f"counters: {stats}"


async def check_a_deferred_job_asked_to_stop_ends_cancelled(s: Subject) -> None:
    """A defer outcome of a job asked to stop answers CANCELLED."""
    b = s.broker
    d = await asked_to_stop(b)
    codes = await b.ack(Q, [defer(d)])
    assert codes == [AckCode.CANCELLED], f"the defer of a job asked to stop answered {codes}"


async def check_a_heartbeat_keeps_a_job_leased_past_its_original_lease(s: Subject) -> None:
    """A heartbeat renews the lease: past the first one, the job stays with its worker."""
    b = s.broker
    lease_ms = 400
    b.enqueue(Q, [job("a")])
    d = await take_one(b, lease_ms=lease_ms)
    s.elapse(250)
    reply = await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], lease_ms)
    wanted = HeartbeatReply(lost=[], cancelled=[])
    assert reply == wanted, f"the heartbeat of a held lease answered {reply}"
    s.elapse(250)  # past the first lease, inside the renewed one
    got = await take(b, worker="w2")
    assert got == [], f"a renewed lease was taken by another worker: {got}"
    assert b.inspector.queue(Q).active == 1, "the job should still be active"
    codes = await b.ack(Q, [ok(d)])
    assert codes == [AckCode.SUCCEEDED], f"the worker's outcome answered {codes}"


async def check_a_heartbeat_reports_leases_the_worker_lost(s: Subject) -> None:
    """A heartbeat names the leases the worker no longer holds, and ones never known."""
    b = s.broker
    b.enqueue(Q, [job("a", max_stalls=5)])
    d = await take_one(b, lease_ms=SHORT_MS, worker="w1")
    s.elapse(SHORT_MS)
    await take(b, worker="w2")
    leases = [Lease(d.id, d.token), Lease("never-seen", "1")]
    reply = await b.heartbeat(Q, "w1", b"{}", leases, LONG_MS)
    wanted = HeartbeatReply(lost=["a", "never-seen"], cancelled=[])
    assert reply == wanted, f"the heartbeat answered {reply}, not {wanted}"


async def check_a_heartbeat_records_the_worker_and_its_queue(s: Subject) -> None:
    """A heartbeat lists the worker among the queue's workers, seen at the broker's time."""
    b = s.broker
    await b.heartbeat(Q, "w1", b'{"host": "h1", "seen": 1}', [], LONG_MS)
    workers = b.inspector.workers(Q).items
    assert len(workers) == 1, f"one worker should be listed: {workers}"
    worker = workers[0]
    assert (worker.id, worker.host) == ("w1", "h1"), f"the worker listed: {worker}"
    # Stamped with the broker's clock, whatever the worker said.
    seen_ms, now_ms = worker.seen_at * 1000, s.now_ms()
    assert abs(seen_ms - now_ms) < _CLOCK_SLACK_MS, f"seen at {seen_ms}, the broker's {now_ms}"
    known = [q.name for q in b.inspector.queues().items]
    assert known == [Q], f"the heartbeat's queue should be known: {known}"


async def check_release_gives_the_job_back_to_its_place_without_spending_an_attempt(
    s: Subject,
) -> None:
    """A released job is queued at its place again, as attempt 1 with a new token."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    d = await take_one(b)
    released = await b.release(Q, [Lease(d.id, d.token)])
    assert released == 1, f"release of a held lease should give 1 job back, not {released}"
    state = b.job_state(Q, "a")
    wanted = JobSnapshot(JobState.QUEUED, None, 0)
    assert state == wanted, f"a released job reads {state}, not {wanted}"
    got = [(j.id, j.attempt, j.token) for j in await take(b, 2)]
    wanted_order = [("a", 1, "2"), ("b", 1, "1")]
    assert got == wanted_order, f"(id, attempt, token) fetched: {got}, not {wanted_order}"


async def check_release_skips_a_lease_the_worker_no_longer_holds(s: Subject) -> None:
    """Release of a wrong token or an unknown job gives nothing back."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    await take_one(b)
    released = await b.release(Q, [Lease("a", "99"), Lease("ghost", "1")])
    assert released == 0, f"release of leases not held gave {released} back"
    state = b.job_state(Q, "a").state
    assert state == "active", f"the held job should stay active, not {state}"


CHECKS: tuple[Check, ...] = (
    check_an_expired_lease_is_reaped_back_before_later_jobs_of_its_priority,
    check_a_lease_seen_running_that_expires_is_a_stall,
    check_a_job_asked_to_stop_whose_worker_died_ends_cancelled_not_rerun,
    check_a_released_job_that_was_asked_to_stop_ends_cancelled,
    check_an_ack_with_a_stale_token_is_refused_after_another_worker_took_the_job,
    check_a_late_success_is_taken_while_nobody_took_the_job_again,
    check_a_late_failure_is_refused_and_the_job_runs_again,
    check_a_released_job_takes_no_late_outcome,
    check_a_job_that_stalls_more_than_max_stalls_goes_dead_as_jobstalled,
    check_leases_lost_before_the_job_ran_end_it_only_after_a_bounded_number,
    check_a_deferred_job_waits_without_spending_an_attempt,
    check_a_deferred_job_asked_to_stop_ends_cancelled,
    check_a_heartbeat_keeps_a_job_leased_past_its_original_lease,
    check_a_heartbeat_reports_leases_the_worker_lost,
    check_a_heartbeat_records_the_worker_and_its_queue,
    check_release_gives_the_job_back_to_its_place_without_spending_an_attempt,
    check_release_skips_a_lease_the_worker_no_longer_holds,
)
