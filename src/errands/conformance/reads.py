"""Checks of reading and waiting: info, known queues, async twins, results and work awaited.

The waits are real time whatever the clock: their timeouts bound how long a caller blocks.
"""

from __future__ import annotations

import asyncio
import threading

from errands.broker.types import AckCode, CancelCode, Enqueued, JobSnapshot
from errands.conformance.jobs import Q, ids, job, kill, ok, outcome_of, take, take_one
from errands.conformance.subject import LONG_MS, Check, Subject
from errands.states import JobState

__all__ = ["CHECKS"]

_BLOCKED_S = 0.05  # long enough for a waiter to block, so the change (not its first read) wakes it
_WAKE_S = 10.0  # a waiter woken by a change must return well within this
_QUEUED = JobSnapshot(JobState.QUEUED, None, 0)


async def check_info_counts_jobs_in_each_state(s: Subject) -> None:
    """`info` counts ready, delayed, active and dead jobs, and the queue's counters."""
    b = s.broker
    await kill(b, "dead")
    b.enqueue(Q, [job("active"), job("ready"), job("delayed", delay_ms=LONG_MS)])
    await take(b)
    info = b.inspector.queue(Q)
    got = (info.name, info.ready, info.delayed, info.active, info.dead)
    assert got == (Q, 1, 1, 1, 1), f"(queue, ready, delayed, active, dead) = {got}"
    assert (info.paused, info.consumers) == (False, 0), f"not paused, no workers: {info}"
    assert info.stats == {"enqueued": 4, "failed": 1}, f"counters: {info.stats}"


async def check_the_queues_are_those_enqueued_to_or_heartbeated_in(s: Subject) -> None:
    """The inspector's queues are, by name, those used by producers and workers, not readers."""
    b = s.broker
    known = [q.name for q in b.inspector.queues().items]
    assert known == [], f"a fresh broker should know no queue: {known}"
    b.enqueue("beta", [job("a")])
    await b.heartbeat("alpha", "w1", b"{}", [], LONG_MS)
    b.job_state("gamma", "a")  # reading does not register a queue
    b.inspector.queue("delta")  # nor does inspecting one
    known = [q.name for q in b.inspector.queues().items]
    assert known == ["alpha", "beta"], f"enqueued to beta, heartbeat in alpha: {known}"


async def check_the_async_twins_act_as_the_blocking_calls(s: Subject) -> None:
    """`aenqueue`, `ajob_state` and `acancel` answer as their blocking twins do."""
    b = s.broker
    answers = await b.aenqueue(Q, [job("a"), job("a")])
    wanted = [Enqueued("a", created=True), Enqueued("a", created=False)]
    assert answers == wanted, f"aenqueue of a twice: {answers}"
    state = await b.ajob_state(Q, "a")
    assert state == _QUEUED, f"ajob_state of a queued job: {state}"
    code = await b.acancel(Q, "a")
    assert code == CancelCode.CANCELLED, f"acancel of a queued job: {code!r}"
    code = await b.acancel(Q, "a")
    assert code == CancelCode.NOT_FOUND, f"acancel of a cancelled job: {code!r}"
    state = await b.ajob_state(Q, "a")
    assert state.state == "cancelled", f"ajob_state of the cancelled job: {state}"


async def check_many_job_states_are_read_in_order_in_one_call(s: Subject) -> None:
    """`ajob_states` answers as `ajob_state` would for each (queue, id), in order."""
    b = s.broker
    assert await b.ajob_states([]) == [], "no jobs: no states"
    b.enqueue(Q, [job("a")])
    b.enqueue("other", [job("b")])
    got = [st.state for st in await b.ajob_states([(Q, "a"), ("other", "b"), (Q, "b")])]
    assert got == ["queued", "queued", "unknown"], f"the states, in order: {got}"


async def check_a_closed_broker_opens_again_on_next_use(s: Subject) -> None:
    """After `close` and `aclose` the broker works again on the next call, its jobs kept."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    b.close()
    await b.aclose()
    answers = b.enqueue(Q, [job("b")])
    assert answers == [Enqueued("b", created=True)], f"enqueue after close: {answers}"
    got = await ids(b)
    assert got == ["a", "b"], f"both jobs should be there after close: {got}"


async def check_wait_result_wakes_when_another_thread_acks(s: Subject) -> None:
    """A `wait_result` blocked in a thread returns the outcome when the job is acked."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    d = await take_one(b)
    started, returned = threading.Event(), threading.Event()
    states: list[JobSnapshot] = []

    def wait() -> None:
        started.set()
        states.append(b.wait_result(Q, "a", 30.0))
        returned.set()

    threading.Thread(target=wait, daemon=True).start()
    assert started.wait(_WAKE_S), "the waiting thread did not start"
    await asyncio.sleep(_BLOCKED_S)
    assert not returned.is_set(), f"wait_result returned before the ack: {states}"
    codes = await b.ack(Q, [ok(d, result=7)])
    assert codes == [AckCode.SUCCEEDED], f"the ack answered {codes}"
    assert returned.wait(_WAKE_S), "wait_result slept through the ack"
    result = outcome_of(states[0]).get("result")
    assert result == 7, f"wait_result should return the result 7, not {result!r}"


async def check_await_result_wakes_when_another_task_acks(s: Subject) -> None:
    """An `await_result` blocked in a task returns the outcome when the job is acked."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    d = await take_one(b)
    waiting = asyncio.create_task(b.await_result(Q, "a", 30.0))
    try:
        await asyncio.sleep(_BLOCKED_S)
        assert not waiting.done(), "await_result returned before the ack"
        await b.ack(Q, [ok(d, result=7)])
        state = await asyncio.wait_for(waiting, _WAKE_S)
    finally:
        waiting.cancel()  # a failed check leaves no waiter behind
    result = outcome_of(state).get("result")
    assert result == 7, f"await_result should return the result 7, not {result!r}"


async def check_await_result_wakes_when_another_thread_cancels(s: Subject) -> None:
    """An `await_result` returns the cancelled state when another thread cancels the job."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    waiting = asyncio.create_task(b.await_result(Q, "a", 30.0))
    try:
        await asyncio.sleep(_BLOCKED_S)
        code = await asyncio.to_thread(b.cancel, Q, "a")
        assert code == CancelCode.CANCELLED, f"cancel of a queued job answered {code!r}"
        state = await asyncio.wait_for(waiting, _WAKE_S)
    finally:
        waiting.cancel()
    assert state.state == "cancelled", f"await_result returned {state}"


async def check_waiting_for_a_result_returns_the_current_state_at_the_timeout(
    s: Subject,
) -> None:
    """At its timeout a wait returns the job's state as it is: queued, or unknown."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    state = b.wait_result(Q, "a", _BLOCKED_S)
    assert state == _QUEUED, f"wait_result at its timeout: {state}"
    state = await b.await_result(Q, "a", _BLOCKED_S)
    assert state == _QUEUED, f"await_result at its timeout: {state}"
    state = b.wait_result(Q, "ghost", _BLOCKED_S)
    assert state == JobSnapshot(JobState.UNKNOWN, None, 0), f"wait for an unknown job: {state}"


async def check_waiting_for_a_finished_job_returns_its_outcome_at_once(s: Subject) -> None:
    """A wait for a job that finished already returns its outcome without waiting."""
    b = s.broker
    await kill(b, "a")
    state = b.wait_result(Q, "a", 30.0)
    assert state.state == "failed", f"wait_result of a dead job: {state}"
    state = await asyncio.wait_for(b.await_result(Q, "a", 30.0), _WAKE_S)
    assert state.state == "failed", f"await_result of a dead job: {state}"


async def check_wait_for_work_takes_a_wake_token_left_by_an_enqueue(s: Subject) -> None:
    """An enqueue leaves a wake token: a later `wait_for_work` on its queue returns True."""
    b = s.broker
    idle = await b.wait_for_work([Q], _BLOCKED_S)
    assert idle is False, "wait_for_work on an empty queue should time out with False"
    b.enqueue(Q, [job("a")])
    woken = await b.wait_for_work(["elsewhere", Q], _BLOCKED_S)
    assert woken is True, "wait_for_work after an enqueue should return True"


async def check_an_empty_fetch_clears_the_wake_tokens_so_idle_workers_block(s: Subject) -> None:
    """A fetch that finds nothing clears the queue's wake tokens, so waits block again."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    got = await ids(b, 5)
    assert got == ["a", "b"], f"both jobs should be handed out: {got}"
    got = await ids(b, 5)
    assert got == [], f"the queue is empty: {got}"
    woken = await b.wait_for_work([Q], _BLOCKED_S)
    assert woken is False, "after an empty fetch, wait_for_work should block and time out"


async def check_wait_for_work_wakes_when_another_thread_enqueues(s: Subject) -> None:
    """A `wait_for_work` blocked in a task returns True when another thread enqueues."""
    b = s.broker
    waiting = asyncio.create_task(b.wait_for_work(["elsewhere", Q], 30.0))
    try:
        await asyncio.sleep(_BLOCKED_S)
        assert not waiting.done(), "wait_for_work returned with no work"
        await asyncio.to_thread(b.enqueue, Q, [job("a")])
        woken = await asyncio.wait_for(waiting, _WAKE_S)
    finally:
        waiting.cancel()
    assert woken is True, "wait_for_work woken by an enqueue should return True"


CHECKS: tuple[Check, ...] = (
    check_info_counts_jobs_in_each_state,
    check_the_queues_are_those_enqueued_to_or_heartbeated_in,
    check_the_async_twins_act_as_the_blocking_calls,
    check_many_job_states_are_read_in_order_in_one_call,
    check_a_closed_broker_opens_again_on_next_use,
    check_wait_result_wakes_when_another_thread_acks,
    check_await_result_wakes_when_another_task_acks,
    check_await_result_wakes_when_another_thread_cancels,
    check_waiting_for_a_result_returns_the_current_state_at_the_timeout,
    check_waiting_for_a_finished_job_returns_its_outcome_at_once,
    check_wait_for_work_takes_a_wake_token_left_by_an_enqueue,
    check_an_empty_fetch_clears_the_wake_tokens_so_idle_workers_block,
    check_wait_for_work_wakes_when_another_thread_enqueues,
)
