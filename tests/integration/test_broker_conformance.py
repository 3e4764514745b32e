"""One suite, two brokers: RedisBroker (real Redis, private namespace) and MemoryBroker.

Every test runs on both, so the in-memory broker users test with behaves as Redis does (the
helpers and the `any_broker` fixture: tests/integration/conformance.py, conftest.py). Leases,
stalls and late outcomes: test_conformance_leases.py; chords: test_conformance_chords.py.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading

import msgspec
import pytest

from errands.broker.base import BrokerSettings
from errands.broker.types import (
    AckCode,
    CancelCode,
    Delivery,
    Enqueued,
    HeartbeatReply,
    JobSnapshot,
    Lease,
    MaintenanceReport,
)
from errands.errors import ConfigurationError
from errands.states import JobState
from tests.integration.conformance import (
    BRIEF_MS,
    LONG_MS,
    SHORT_MS,
    Q,
    Subject,
    fail,
    ids,
    job,
    kill,
    ok,
    outcome_of,
    retry,
    take,
)

# Enqueue and fetch ---------------------------------------------------------------------------


async def test_enqueue_creates_new_jobs_and_reports_a_known_id_as_a_duplicate(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    assert b.enqueue(Q, [job("a"), job("b"), job("a")]) == [
        Enqueued("a", created=True),
        Enqueued("b", created=True),
        Enqueued("a", created=False),
    ]
    assert b.enqueue(Q, [job("b")]) == [Enqueued("b", created=False)]
    assert b.info(Q).ready == 2
    assert b.info(Q).stats == {"enqueued": 2}


async def test_a_finished_job_id_stays_a_duplicate_while_its_result_is_kept(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    await b.ack(Q, [ok(d)])
    assert b.enqueue(Q, [job("a")]) == [Enqueued("a", created=False)]


async def test_fetch_leases_a_job_with_its_payload_attempt_one_and_a_token(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    fetched = await b.fetch(Q, 5, LONG_MS, "w1")
    assert fetched.jobs == [Delivery("a", b"payload of a", 1, "1")]
    assert fetched.next_due_ms is None
    assert not fetched.paused
    assert b.job_state(Q, "a") == JobSnapshot(JobState.ACTIVE, None, 1)
    assert (b.info(Q).ready, b.info(Q).active) == (0, 1)


async def test_fetch_says_whether_ready_jobs_are_left_behind_what_it_handed_out(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b")])
    first = await b.fetch(Q, 1, LONG_MS, "w1")
    assert ([d.id for d in first.jobs], first.more) == (["a"], True)
    last = await b.fetch(Q, 1, LONG_MS, "w1")
    assert ([d.id for d in last.jobs], last.more) == (["b"], False)
    assert (await b.fetch(Q, 1, LONG_MS, "w1")).more is False


async def test_jobs_come_out_by_priority_then_fifo_across_ten_thousand_jobs(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    rng = random.Random(7)
    jobs = [job(f"j{i:05}", priority=rng.randint(0, 9)) for i in range(10_000)]
    for start in range(0, len(jobs), 1000):
        assert all(e.created for e in b.enqueue(Q, jobs[start : start + 1000]))
    expected = [j.id for j in sorted(jobs, key=lambda j: -j.priority)]  # sort is stable: FIFO
    got: list[str] = []
    for _ in range(10):
        got += await ids(b, 1000)
    assert got == expected
    assert await ids(b, 1000) == []


async def test_a_delayed_job_is_not_fetchable_before_it_is_due_and_is_promoted_after(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("later", delay_ms=BRIEF_MS)])
    assert b.job_state(Q, "later").state == "scheduled"
    fetched = await b.fetch(Q, 1, LONG_MS, "w1")
    assert fetched.jobs == []
    assert fetched.next_due_ms is not None
    assert 0 < fetched.next_due_ms <= BRIEF_MS
    any_broker.elapse(BRIEF_MS)
    assert await ids(b) == ["later"]


async def test_a_promoted_job_queues_behind_jobs_already_ready_at_its_priority(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("delayed", delay_ms=SHORT_MS)])
    b.enqueue(Q, [job("first"), job("urgent", priority=9)])
    any_broker.elapse(SHORT_MS)
    assert await ids(b) == ["urgent", "first", "delayed"]


async def test_a_paused_queue_hands_out_nothing_until_resumed(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    b.set_paused(Q, True)
    fetched = await b.fetch(Q, 1, LONG_MS, "w1")
    assert (fetched.jobs, fetched.paused) == ([], True)
    assert b.info(Q).paused
    b.set_paused(Q, False)
    assert not b.info(Q).paused
    assert await ids(b) == ["a"]


async def test_an_invalid_queue_name_is_refused(any_broker: Subject) -> None:
    with pytest.raises(ConfigurationError, match="queue name 'no spaces!' is not allowed"):
        any_broker.broker.enqueue("no spaces!", [job("a")])


# Ack: success, retry, death ------------------------------------------------------------------


async def test_an_ok_ack_stores_the_result_and_deletes_the_job(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert await b.ack(Q, [ok(d, result=42)]) == [AckCode.SUCCEEDED]
    state = b.job_state(Q, "a")
    assert state.state == "succeeded"
    assert outcome_of(state)["result"] == 42
    info = b.info(Q)
    assert (info.ready, info.active, info.delayed, info.dead) == (0, 0, 0, 0)
    assert info.stats == {"enqueued": 1, "succeeded": 1}


async def test_an_ack_of_an_unknown_or_already_settled_job_is_stale(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    ghost = Delivery("ghost", b"", 1, "1")
    assert await b.ack(Q, [ok(d), ok(d), ok(ghost)]) == [
        AckCode.SUCCEEDED,
        AckCode.STALE,
        AckCode.STALE,
    ]


async def test_a_retry_waits_in_delayed_for_its_delay_then_runs_as_the_next_attempt(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert await b.ack(Q, [retry(d, delay_ms=BRIEF_MS)]) == [AckCode.RETRYING]
    assert b.job_state(Q, "a") == JobSnapshot(JobState.SCHEDULED, None, 1)
    assert b.info(Q).delayed == 1
    assert await take(b) == []
    any_broker.elapse(BRIEF_MS)
    [again] = await take(b)
    assert (again.id, again.attempt, again.token) == ("a", 2, "2")
    assert b.info(Q).stats == {"enqueued": 1, "retried": 1}


async def test_a_retry_on_the_last_attempt_sends_the_job_to_the_dead_set(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", max_attempts=2)])
    [d] = await take(b)
    assert await b.ack(Q, [retry(d)]) == [AckCode.RETRYING]
    [d] = await take(b)
    assert d.attempt == 2
    assert await b.ack(Q, [retry(d)]) == [AckCode.DEAD]
    state = b.job_state(Q, "a")
    assert (state.state, state.attempts) == ("failed", 2)
    assert outcome_of(state)["error"]["type"] == "ValueError"
    assert b.info(Q).dead == 1
    assert b.info(Q).stats == {"enqueued": 1, "retried": 1, "failed": 1}


async def test_a_fail_outcome_sends_the_job_to_the_dead_set_with_attempts_left(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", max_attempts=5)])
    [d] = await take(b)
    assert await b.ack(Q, [fail(d)]) == [AckCode.DEAD]
    assert b.job_state(Q, "a").state == "failed"
    assert b.info(Q).dead == 1


async def test_ack_and_fetch_settles_then_leases_the_next_job(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b")])
    [d] = await take(b)
    codes, fetched = await b.ack_and_fetch(Q, [ok(d)], 5, LONG_MS, "w1")
    assert codes == [AckCode.SUCCEEDED]
    assert [j.id for j in fetched.jobs] == ["b"]


async def test_an_ignored_result_is_not_kept(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", ignore_result=True)])
    [d] = await take(b)
    assert await b.ack(Q, [ok(d)]) == [AckCode.SUCCEEDED]
    assert b.job_state(Q, "a") == JobSnapshot(JobState.UNKNOWN, None, 0)


async def test_a_result_expires_after_its_ttl(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", result_ttl_ms=BRIEF_MS)])
    [d] = await take(b)
    await b.ack(Q, [ok(d)])
    assert b.job_state(Q, "a").state == "succeeded"
    any_broker.elapse(BRIEF_MS)
    assert b.job_state(Q, "a") == JobSnapshot(JobState.UNKNOWN, None, 0)


# Cancel ---------------------------------------------------------------------------------------


async def test_a_cancelled_queued_job_is_never_fetched_and_reads_cancelled(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b")])
    assert b.cancel(Q, "a") == CancelCode.CANCELLED
    assert await ids(b) == ["b"]
    state = b.job_state(Q, "a")
    assert state.state == "cancelled"
    assert outcome_of(state) == {"state": "cancelled", "attempts": 0}
    assert b.info(Q).stats["cancelled"] == 1


async def test_a_cancelled_scheduled_job_never_becomes_due(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", delay_ms=SHORT_MS)])
    assert b.cancel(Q, "a") == CancelCode.CANCELLED
    assert b.info(Q).delayed == 0
    any_broker.elapse(SHORT_MS)
    assert await take(b) == []
    assert b.job_state(Q, "a").state == "cancelled"


async def test_cancelling_a_running_job_asks_it_to_stop_and_its_retry_is_cancelled(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    assert b.cancel(Q, "a") == CancelCode.REQUESTED
    reply = await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], LONG_MS)
    assert reply == HeartbeatReply(lost=[], cancelled=["a"])
    assert await b.ack(Q, [retry(d)]) == [AckCode.CANCELLED]
    assert outcome_of(b.job_state(Q, "a")) == {"state": "cancelled", "attempts": 1}


async def test_a_running_job_asked_to_stop_that_succeeds_keeps_its_result(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    b.cancel(Q, "a")
    assert await b.ack(Q, [ok(d, "done")]) == [AckCode.SUCCEEDED]
    assert b.job_state(Q, "a").state == "succeeded"


async def test_cancelling_a_dead_job_removes_it_from_the_dead_set(any_broker: Subject) -> None:
    b = any_broker.broker
    await kill(b, "a")
    assert b.cancel(Q, "a") == CancelCode.REMOVED_FROM_DEAD
    assert b.info(Q).dead == 0
    assert b.job_state(Q, "a").state == "cancelled"


async def test_cancelling_an_unknown_or_finished_job_finds_nothing(any_broker: Subject) -> None:
    b = any_broker.broker
    assert b.cancel(Q, "ghost") == CancelCode.NOT_FOUND
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    await b.ack(Q, [ok(d)])
    assert b.cancel(Q, "a") == CancelCode.NOT_FOUND


# Dead set: redrive, purge, cap ----------------------------------------------------------------


async def test_redrive_moves_a_dead_job_back_to_ready_with_fresh_attempts_and_no_result(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a", max_attempts=2)])
    for _ in range(2):
        [d] = await take(b)
        await b.ack(Q, [retry(d)])
    assert b.info(Q).dead == 1
    assert b.redrive(Q) == ["a"]
    assert b.job_state(Q, "a") == JobSnapshot(JobState.QUEUED, None, 0)
    assert b.info(Q).dead == 0
    [d] = await take(b)
    assert d.attempt == 1
    assert await b.ack(Q, [retry(d)]) == [AckCode.RETRYING]  # attempts left again


async def test_redrive_by_id_moves_only_dead_jobs(any_broker: Subject) -> None:
    b = any_broker.broker
    await kill(b, "dead")
    b.enqueue(Q, [job("alive")])
    assert b.redrive(Q, ["alive", "ghost", "dead"]) == ["dead"]


async def test_purge_deletes_dead_jobs_for_good(any_broker: Subject) -> None:
    b = any_broker.broker
    for job_id in ("a", "b", "c"):
        await kill(b, job_id)
    assert b.purge(Q, ["b", "ghost"]) == 1
    assert b.purge(Q, limit=1) == 1
    assert [dead_id for dead_id, _, _ in b.dead_jobs(Q)] == ["c"]
    assert b.purge(Q) == 1
    assert b.info(Q).dead == 0
    assert b.redrive(Q, ["a", "b", "c"]) == []


async def test_dead_jobs_lists_the_oldest_with_time_of_death_and_payload(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    before = any_broker.now_ms() / 1000
    await kill(b, "a")
    any_broker.elapse(5)
    await kill(b, "b")
    dead = b.dead_jobs(Q, limit=1)
    assert [(i, p) for i, _, p in dead] == [("a", b"payload of a")]
    assert before - 1 <= dead[0][1] <= any_broker.now_ms() / 1000 + 1


async def test_the_dead_set_cap_drops_the_oldest_dead_job(any_broker: Subject) -> None:
    b = any_broker.broker
    b.settings = BrokerSettings(dead_max_count=2)
    for job_id in ("dead-1", "dead-2", "dead-3"):
        await kill(b, job_id)
        any_broker.elapse(2)
    assert [dead_id for dead_id, _, _ in b.dead_jobs(Q)] == ["dead-2", "dead-3"]
    assert b.info(Q).dead == 2


# Idempotency ----------------------------------------------------------------------------------


async def test_a_window_key_returns_the_first_job_inside_the_window_and_a_new_one_after(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    keyed = {"idempotency_key": "welcome:42", "idempotency_ttl_ms": BRIEF_MS}
    assert b.enqueue(Q, [job("first", **keyed)]) == [Enqueued("first", created=True)]
    [d] = await take(b)
    await b.ack(Q, [ok(d)])  # the window holds after the job finished
    assert b.enqueue(Q, [job("second", **keyed)]) == [Enqueued("first", created=False)]
    any_broker.elapse(BRIEF_MS)
    assert b.enqueue(Q, [job("third", **keyed)]) == [Enqueued("third", created=True)]


# The key travels inside the job's meta, packed by the client (msgpack: a key of 32 bytes or more
# is a str8 or str16, not a fixstr) and read back by the functions when the job ends.
@pytest.mark.parametrize("key", ["sync", "invoice-2026-11-28-" + "é" * 200], ids=["short", "long"])
async def test_an_until_finished_key_is_released_when_the_job_ends(
    any_broker: Subject, key: str
) -> None:
    b = any_broker.broker
    keyed = {"idempotency_key": key, "idempotency_mode": "until_finished"}
    b.enqueue(Q, [job("first", **keyed)])
    assert b.enqueue(Q, [job("second", **keyed)]) == [Enqueued("first", created=False)]
    [d] = await take(b)
    await b.ack(Q, [ok(d)])
    assert b.enqueue(Q, [job("third", **keyed)]) == [Enqueued("third", created=True)]


async def test_an_until_finished_key_is_released_when_the_job_dies(any_broker: Subject) -> None:
    b = any_broker.broker
    keyed = {"idempotency_key": "sync", "idempotency_mode": "until_finished"}
    b.enqueue(Q, [job("first", max_attempts=1, **keyed)])
    [d] = await take(b)
    await b.ack(Q, [fail(d)])
    assert b.enqueue(Q, [job("second", **keyed)]) == [Enqueued("second", created=True)]


# Maintenance ----------------------------------------------------------------------------------


async def test_another_workers_maintenance_pass_inside_the_lock_returns_none(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    assert await b.maintain(Q, "w1", BRIEF_MS) == MaintenanceReport(0, 0, 0, 0, 0, 0)
    assert await b.maintain(Q, "w2", BRIEF_MS) is None
    assert await b.maintain(Q, "w1", BRIEF_MS) is not None  # its owner may go again
    any_broker.elapse(BRIEF_MS)
    assert await b.maintain(Q, "w2", BRIEF_MS) is not None


async def test_a_maintenance_pass_with_more_to_do_than_its_limit_says_it_is_saturated(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job(f"j{i}", result_ttl_ms=SHORT_MS) for i in range(5)])
    await b.ack(Q, [ok(d) for d in await take(b, 5)])
    any_broker.elapse(SHORT_MS)
    b.settings = msgspec.structs.replace(b.settings, maintenance_limit=3)
    first = await b.maintain(Q, "w1", LONG_MS)
    assert first is not None
    assert (first.results_expired, first.saturated) == (3, True)
    second = await b.maintain(Q, "w1", LONG_MS)
    assert second is not None
    assert (second.results_expired, second.saturated) == (2, False)


async def test_maintenance_promotes_reaps_and_expires_results_and_keys(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("leased"), job("finished", result_ttl_ms=SHORT_MS)])
    _, finished = await take(b, 2, lease_ms=SHORT_MS)
    await b.ack(Q, [ok(finished)])
    b.enqueue(Q, [job("keyed", idempotency_key="k", idempotency_ttl_ms=SHORT_MS)])
    b.enqueue(Q, [job("due", delay_ms=SHORT_MS)])
    any_broker.elapse(SHORT_MS)
    assert await b.maintain(Q, "w1", LONG_MS) == MaintenanceReport(
        promoted=1,
        reaped=1,
        results_expired=1,
        idempotency_expired=1,
        dead_trimmed=0,
        workers_dropped=0,
    )
    assert await ids(b) == ["leased", "keyed", "due"]


async def test_maintenance_drops_dead_jobs_past_the_cap_or_the_age_limit(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    for job_id in ("dead-1", "dead-2", "dead-3"):
        await kill(b, job_id)
    b.settings = BrokerSettings(dead_max_count=2, dead_max_age_ms=BRIEF_MS)
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None
    assert report.dead_trimmed == 1
    assert [dead_id for dead_id, _, _ in b.dead_jobs(Q)] == ["dead-2", "dead-3"]
    any_broker.elapse(BRIEF_MS)
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None
    assert report.dead_trimmed == 2
    assert b.info(Q).dead == 0


async def test_maintenance_drops_workers_not_seen_for_the_silence_period(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.settings = msgspec.structs.replace(b.settings, worker_silence_ms=200)
    # The worker's own clock is ignored: the heartbeat stamps the broker's time.
    await b.heartbeat(Q, "silent", json.dumps({"seen": 10**15}).encode(), [], LONG_MS)
    any_broker.elapse(300)
    await b.heartbeat(Q, "alive", json.dumps({"seen": 0}).encode(), [], LONG_MS)
    await b.heartbeat(Q, "garbled", b"not json", [], LONG_MS)
    report = await b.maintain(Q, "w1", LONG_MS)
    assert report is not None
    assert report.workers_dropped == 1
    assert sorted(b.info(Q).workers) == ["alive", "garbled"]


# Reading: info, known queues, async twins --------------------------------------------------


async def test_info_counts_jobs_in_each_state(any_broker: Subject) -> None:
    b = any_broker.broker
    await kill(b, "dead")
    b.enqueue(Q, [job("active"), job("ready"), job("delayed", delay_ms=LONG_MS)])
    await take(b)
    info = b.info(Q)
    assert (info.queue, info.ready, info.delayed, info.active, info.dead) == (Q, 1, 1, 1, 1)
    assert (info.paused, info.workers) == (False, {})
    assert info.stats == {"enqueued": 4, "failed": 1}


async def test_known_queues_lists_queues_enqueued_to_or_heartbeated_in(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    assert b.known_queues() == []
    b.enqueue("beta", [job("a")])
    await b.heartbeat("alpha", "w1", b"{}", [], LONG_MS)
    b.job_state("gamma", "a")  # reading does not register a queue
    assert b.known_queues() == ["alpha", "beta"]


async def test_the_async_twins_act_as_the_blocking_calls(any_broker: Subject) -> None:
    b = any_broker.broker
    assert await b.aenqueue(Q, [job("a"), job("a")]) == [
        Enqueued("a", created=True),
        Enqueued("a", created=False),
    ]
    assert await b.ajob_state(Q, "a") == JobSnapshot(JobState.QUEUED, None, 0)
    assert await b.acancel(Q, "a") == CancelCode.CANCELLED
    assert await b.acancel(Q, "a") == CancelCode.NOT_FOUND
    assert (await b.ajob_state(Q, "a")).state == "cancelled"


async def test_a_closed_broker_opens_again_on_next_use(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    b.close()
    await b.aclose()
    assert b.enqueue(Q, [job("b")]) == [Enqueued("b", created=True)]
    assert await ids(b) == ["a", "b"]


# Waiting: results and work --------------------------------------------------------------------


async def test_wait_result_wakes_when_another_thread_acks(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    started, returned = threading.Event(), threading.Event()
    states: list[JobSnapshot] = []

    def wait() -> None:
        started.set()
        states.append(b.wait_result(Q, "a", 30.0))
        returned.set()

    threading.Thread(target=wait, daemon=True).start()
    assert started.wait(10)
    await asyncio.sleep(0.05)  # let it block, so that the ack (not the first read) ends it
    assert not returned.is_set()
    assert await b.ack(Q, [ok(d, result=7)]) == [AckCode.SUCCEEDED]
    assert returned.wait(10), "wait_result slept through the ack"
    assert outcome_of(states[0])["result"] == 7


async def test_await_result_wakes_when_another_task_acks(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    [d] = await take(b)
    waiting = asyncio.create_task(b.await_result(Q, "a", 30.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await b.ack(Q, [ok(d, result=7)])
    state = await asyncio.wait_for(waiting, 10)
    assert outcome_of(state)["result"] == 7


async def test_await_result_wakes_when_another_thread_cancels(any_broker: Subject) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    waiting = asyncio.create_task(b.await_result(Q, "a", 30.0))
    await asyncio.sleep(0.05)
    assert await asyncio.to_thread(b.cancel, Q, "a") == CancelCode.CANCELLED
    state = await asyncio.wait_for(waiting, 10)
    assert state.state == "cancelled"


async def test_waiting_for_a_result_returns_the_current_state_at_the_timeout(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a")])
    assert b.wait_result(Q, "a", 0.05) == JobSnapshot(JobState.QUEUED, None, 0)
    assert await b.await_result(Q, "a", 0.05) == JobSnapshot(JobState.QUEUED, None, 0)
    assert b.wait_result(Q, "ghost", 0.05) == JobSnapshot(JobState.UNKNOWN, None, 0)


async def test_waiting_for_a_finished_job_returns_its_outcome_at_once(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    await kill(b, "a")
    assert b.wait_result(Q, "a", 30.0).state == "failed"
    assert (await b.await_result(Q, "a", 30.0)).state == "failed"


async def test_wait_for_work_takes_a_wake_token_left_by_an_enqueue(any_broker: Subject) -> None:
    b = any_broker.broker
    assert await b.wait_for_work([Q], 0.05) is False
    b.enqueue(Q, [job("a")])
    assert await b.wait_for_work(["elsewhere", Q], 0.05) is True


async def test_an_empty_fetch_clears_the_wake_tokens_so_idle_workers_block(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.enqueue(Q, [job("a"), job("b")])
    assert await ids(b, 5) == ["a", "b"]
    assert await ids(b, 5) == []
    assert await b.wait_for_work([Q], 0.05) is False


async def test_wait_for_work_wakes_when_another_thread_enqueues(any_broker: Subject) -> None:
    b = any_broker.broker
    waiting = asyncio.create_task(b.wait_for_work(["elsewhere", Q], 30.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await asyncio.to_thread(b.enqueue, Q, [job("a")])
    assert await asyncio.wait_for(waiting, 10) is True
