"""Checks of acks and cancels: results, retries, deaths, stale outcomes, jobs asked to stop."""

from __future__ import annotations

from errands.broker.types import AckCode, CancelCode, Delivery, HeartbeatReply, JobSnapshot, Lease
from errands.conformance.jobs import (
    Q,
    asked_to_stop,
    fail,
    ids,
    job,
    kill,
    ok,
    outcome_of,
    retry,
    take,
    take_one,
)
from errands.conformance.subject import BRIEF_MS, LONG_MS, SHORT_MS, Check, Subject
from errands.states import JobState

__all__ = ["CHECKS"]

_GONE = JobSnapshot(JobState.UNKNOWN, None, 0)


async def check_an_ok_ack_stores_the_result_and_deletes_the_job(s: Subject) -> None:
    """An ok ack answers SUCCEEDED, keeps the result and leaves no job in any set."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    codes = await b.ack(Q, [ok(await take_one(b), result=42)])
    assert codes == [AckCode.SUCCEEDED], f"an ok ack of a leased job answered {codes}"
    state = b.job_state(Q, "a")
    assert state.state == "succeeded", f"the acked job reads {state}"
    result = outcome_of(state).get("result")
    assert result == 42, f"the stored result should be 42, not {result!r}"
    info = b.inspector.queue(Q)
    counts = (info.ready, info.active, info.delayed, info.dead)
    assert counts == (0, 0, 0, 0), f"ready, active, delayed, dead after the ack: {counts}"
    assert info.stats == {"enqueued": 1, "succeeded": 1}, f"counters: {info.stats}"


async def check_an_ack_of_an_unknown_or_already_settled_job_is_stale(s: Subject) -> None:
    """An outcome for a job settled already, or never enqueued, answers STALE."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    d = await take_one(b)
    ghost = Delivery("ghost", b"", 1, "1")
    codes = await b.ack(Q, [ok(d), ok(d), ok(ghost)])
    wanted = [AckCode.SUCCEEDED, AckCode.STALE, AckCode.STALE]
    assert codes == wanted, f"ack of a, a again and an unknown job: {codes}, not {wanted}"


async def check_a_retry_waits_in_delayed_for_its_delay_then_runs_as_the_next_attempt(
    s: Subject,
) -> None:
    """A retry outcome schedules the job for its delay; then it comes back as attempt 2."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    codes = await b.ack(Q, [retry(await take_one(b), delay_ms=BRIEF_MS)])
    assert codes == [AckCode.RETRYING], f"a retry with attempts left answered {codes}"
    state = b.job_state(Q, "a")
    assert state == JobSnapshot(JobState.SCHEDULED, None, 1), f"a job awaiting retry: {state}"
    assert b.inspector.queue(Q).delayed == 1, "the retried job should count as delayed"
    early = await take(b)
    assert early == [], f"the retry was handed out before its delay passed: {early}"
    s.elapse(BRIEF_MS)
    again = await take_one(b)
    got = (again.id, again.attempt, again.token)
    assert got == ("a", 2, "2"), f"the retry's (id, attempt, token): {got}"
    stats = b.inspector.queue(Q).stats
    assert stats == {"enqueued": 1, "retried": 1}, f"counters: {stats}"


async def check_a_retry_on_the_last_attempt_sends_the_job_to_the_dead_set(s: Subject) -> None:
    """A retry outcome with no attempt left answers DEAD and keeps the error as the outcome."""
    b = s.broker
    b.enqueue(Q, [job("a", max_attempts=2)])
    codes = await b.ack(Q, [retry(await take_one(b))])
    assert codes == [AckCode.RETRYING], f"the first of two attempts retried: {codes}"
    d = await take_one(b)
    assert d.attempt == 2, f"the second run should be attempt 2, not {d.attempt}"
    codes = await b.ack(Q, [retry(d)])
    assert codes == [AckCode.DEAD], f"a retry on the last attempt answered {codes}"
    state = b.job_state(Q, "a")
    assert (state.state, state.attempts) == ("failed", 2), f"the dead job reads {state}"
    error_type = outcome_of(state)["error"]["type"]
    assert error_type == "ValueError", f"the outcome should keep the error, not {error_type}"
    info = b.inspector.queue(Q)
    assert info.dead == 1, f"one job should be dead, not {info.dead}"
    stats = {"enqueued": 1, "retried": 1, "failed": 1}
    assert info.stats == stats, f"counters: {info.stats}, not {stats}"


async def check_a_fail_outcome_sends_the_job_to_the_dead_set_with_attempts_left(
    s: Subject,
) -> None:
    """A fail outcome answers DEAD whatever attempts are left."""
    b = s.broker
    b.enqueue(Q, [job("a", max_attempts=5)])
    codes = await b.ack(Q, [fail(await take_one(b))])
    assert codes == [AckCode.DEAD], f"a fail outcome with 4 attempts left answered {codes}"
    state = b.job_state(Q, "a").state
    assert state == "failed", f"the failed job reads {state}"
    assert b.inspector.queue(Q).dead == 1, "the failed job should be in the dead set"


async def check_ack_and_fetch_settles_then_leases_the_next_job(s: Subject) -> None:
    """`ack_and_fetch` answers the ack's codes and the jobs of the fetch after it."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    codes, fetched = await b.ack_and_fetch(Q, [ok(await take_one(b))], 5, LONG_MS, "w1")
    assert codes == [AckCode.SUCCEEDED], f"the ack half answered {codes}"
    got = [j.id for j in fetched.jobs]
    assert got == ["b"], f"the fetch half should hand out b: {got}"


async def check_an_ignored_result_is_not_kept(s: Subject) -> None:
    """The success of a job enqueued with ignore_result leaves nothing to read."""
    b = s.broker
    b.enqueue(Q, [job("a", ignore_result=True)])
    codes = await b.ack(Q, [ok(await take_one(b))])
    assert codes == [AckCode.SUCCEEDED], f"an ok ack answered {codes}"
    state = b.job_state(Q, "a")
    assert state == _GONE, f"a job whose result is ignored should read unknown: {state}"


async def check_a_result_expires_after_its_ttl(s: Subject) -> None:
    """A result is kept for its result_ttl_ms, then the job reads unknown."""
    b = s.broker
    b.enqueue(Q, [job("a", result_ttl_ms=BRIEF_MS)])
    await b.ack(Q, [ok(await take_one(b))])
    state = b.job_state(Q, "a")
    assert state.state == "succeeded", f"inside its TTL the result reads {state}"
    s.elapse(BRIEF_MS)
    state = b.job_state(Q, "a")
    assert state == _GONE, f"past its TTL the result should be gone: {state}"


async def check_a_cancelled_queued_job_is_never_fetched_and_reads_cancelled(
    s: Subject,
) -> None:
    """Cancelling a queued job answers CANCELLED; it is skipped and its outcome says why."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    code = b.cancel(Q, "a")
    assert code == CancelCode.CANCELLED, f"cancel of a queued job answered {code!r}"
    got = await ids(b)
    assert got == ["b"], f"only b should be handed out: {got}"
    state = b.job_state(Q, "a")
    assert state.state == "cancelled", f"the cancelled job reads {state}"
    outcome = outcome_of(state)
    wanted = {"state": "cancelled", "attempts": 0}
    assert outcome == wanted, f"the outcome of a job cancelled queued: {outcome}, not {wanted}"
    cancelled = b.inspector.queue(Q).stats.get("cancelled")
    assert cancelled == 1, f"the cancelled counter should be 1, not {cancelled}"


async def check_a_cancelled_scheduled_job_never_becomes_due(s: Subject) -> None:
    """A delayed job cancelled leaves the delayed set and is not handed out once due."""
    b = s.broker
    b.enqueue(Q, [job("a", delay_ms=SHORT_MS)])
    code = b.cancel(Q, "a")
    assert code == CancelCode.CANCELLED, f"cancel of a delayed job answered {code!r}"
    assert b.inspector.queue(Q).delayed == 0, "the cancelled job should leave the delayed set"
    s.elapse(SHORT_MS)
    got = await take(b)
    assert got == [], f"a cancelled job was handed out when due: {got}"
    state = b.job_state(Q, "a").state
    assert state == "cancelled", f"the cancelled job reads {state}"


async def check_cancelling_a_running_job_asks_it_to_stop_and_its_retry_is_cancelled(
    s: Subject,
) -> None:
    """Cancelling an active job answers REQUESTED, the heartbeat says so, a retry ends it."""
    b = s.broker
    d = await asked_to_stop(b)
    reply = await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], LONG_MS)
    wanted = HeartbeatReply(lost=[], cancelled=["a"])
    assert reply == wanted, f"the worker's heartbeat should hear of the cancel: {reply}"
    codes = await b.ack(Q, [retry(d)])
    assert codes == [AckCode.CANCELLED], f"a retry of a job asked to stop answered {codes}"
    outcome = outcome_of(b.job_state(Q, "a"))
    assert outcome == {"state": "cancelled", "attempts": 1}, f"its outcome: {outcome}"


async def check_a_running_job_asked_to_stop_that_succeeds_keeps_its_result(s: Subject) -> None:
    """A job asked to stop that succeeds anyway answers SUCCEEDED and keeps its result."""
    b = s.broker
    d = await asked_to_stop(b)
    codes = await b.ack(Q, [ok(d, "done")])
    assert codes == [AckCode.SUCCEEDED], f"the success of a job asked to stop: {codes}"
    state = b.job_state(Q, "a").state
    assert state == "succeeded", f"it should read succeeded, not {state}"


async def check_cancelling_a_dead_job_removes_it_from_the_dead_set(s: Subject) -> None:
    """Cancelling a dead job answers REMOVED_FROM_DEAD; it leaves the set and reads cancelled."""
    b = s.broker
    await kill(b, "a")
    code = b.cancel(Q, "a")
    assert code == CancelCode.REMOVED_FROM_DEAD, f"cancel of a dead job answered {code!r}"
    assert b.inspector.queue(Q).dead == 0, "the cancelled dead job should leave the dead set"
    state = b.job_state(Q, "a").state
    assert state == "cancelled", f"it should read cancelled, not {state}"


async def check_cancelling_an_unknown_or_finished_job_finds_nothing(s: Subject) -> None:
    """Cancelling a job never enqueued, or one that succeeded, answers NOT_FOUND."""
    b = s.broker
    code = b.cancel(Q, "ghost")
    assert code == CancelCode.NOT_FOUND, f"cancel of an unknown job answered {code!r}"
    b.enqueue(Q, [job("a")])
    await b.ack(Q, [ok(await take_one(b))])
    code = b.cancel(Q, "a")
    assert code == CancelCode.NOT_FOUND, f"cancel of a finished job answered {code!r}"


CHECKS: tuple[Check, ...] = (
    check_an_ok_ack_stores_the_result_and_deletes_the_job,
    check_an_ack_of_an_unknown_or_already_settled_job_is_stale,
    check_a_retry_waits_in_delayed_for_its_delay_then_runs_as_the_next_attempt,
    check_a_retry_on_the_last_attempt_sends_the_job_to_the_dead_set,
    check_a_fail_outcome_sends_the_job_to_the_dead_set_with_attempts_left,
    check_ack_and_fetch_settles_then_leases_the_next_job,
    check_an_ignored_result_is_not_kept,
    check_a_result_expires_after_its_ttl,
    check_a_cancelled_queued_job_is_never_fetched_and_reads_cancelled,
    check_a_cancelled_scheduled_job_never_becomes_due,
    check_cancelling_a_running_job_asks_it_to_stop_and_its_retry_is_cancelled,
    check_a_running_job_asked_to_stop_that_succeeds_keeps_its_result,
    check_cancelling_a_dead_job_removes_it_from_the_dead_set,
    check_cancelling_an_unknown_or_finished_job_finds_nothing,
)
