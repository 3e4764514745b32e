"""Checks of enqueue and fetch: duplicates, leases handed out, priorities, delays, pauses, keys."""

from __future__ import annotations

import random

from errands.broker.types import Delivery, Enqueued, JobSnapshot
from errands.conformance.jobs import Q, fail, ids, job, ok, take_one
from errands.conformance.subject import BRIEF_MS, LONG_MS, SHORT_MS, Check, Subject
from errands.errors import ConfigurationError
from errands.states import JobState

__all__ = ["CHECKS"]


async def check_enqueue_creates_new_jobs_and_reports_a_known_id_as_a_duplicate(
    s: Subject,
) -> None:
    """Enqueue answers created for a new id and not created for one it already holds."""
    b = s.broker
    answers = b.enqueue(Q, [job("a"), job("b"), job("a")])
    assert answers == [
        Enqueued("a", created=True),
        Enqueued("b", created=True),
        Enqueued("a", created=False),
    ], f"a batch of a, b, a should create a and b and find a again: {answers}"
    again = b.enqueue(Q, [job("b")])
    assert again == [Enqueued("b", created=False)], f"b was enqueued already: {again}"
    info = b.inspector.queue(Q)
    assert info.ready == 2, f"two distinct jobs should be ready, not {info.ready}"
    assert info.stats == {"enqueued": 2}, f"only new jobs count as enqueued: {info.stats}"


async def check_a_finished_job_id_stays_a_duplicate_while_its_result_is_kept(s: Subject) -> None:
    """An id whose result is still kept cannot be enqueued again."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    await b.ack(Q, [ok(await take_one(b))])
    answers = b.enqueue(Q, [job("a")])
    assert answers == [Enqueued("a", created=False)], f"a finished, result kept: {answers}"


async def check_fetch_leases_a_job_with_its_payload_attempt_one_and_a_token(s: Subject) -> None:
    """A fetch hands out the job's payload as attempt 1 with token "1", and it becomes active."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    fetched = await b.fetch(Q, 5, LONG_MS, "w1")
    assert fetched.jobs == [Delivery("a", b"payload of a", 1, "1")], f"fetched {fetched.jobs}"
    assert fetched.next_due_ms is None, f"nothing is delayed, yet next_due_ms is set: {fetched}"
    assert not fetched.paused, "the queue was never paused, yet the fetch says it is"
    state = b.job_state(Q, "a")
    assert state == JobSnapshot(JobState.ACTIVE, None, 1), f"a leased job reads {state}"
    info = b.inspector.queue(Q)
    assert (info.ready, info.active) == (0, 1), f"ready, active after the fetch: {info}"


async def check_fetch_says_whether_ready_jobs_are_left_behind_what_it_handed_out(
    s: Subject,
) -> None:
    """`Fetched.more` is true while ready jobs are left after the ones handed out."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    first = await b.fetch(Q, 1, LONG_MS, "w1")
    got = ([d.id for d in first.jobs], first.more)
    assert got == (["a"], True), f"first fetch of one, b left behind: (ids, more) = {got}"
    last = await b.fetch(Q, 1, LONG_MS, "w1")
    got = ([d.id for d in last.jobs], last.more)
    assert got == (["b"], False), f"fetch of the last job: (ids, more) = {got}"
    empty = await b.fetch(Q, 1, LONG_MS, "w1")
    assert empty.more is False, f"an empty queue has no more: {empty}"


async def check_jobs_come_out_by_priority_then_fifo_across_ten_thousand_jobs(s: Subject) -> None:
    """Fetches hand out the highest priority first, and jobs of one priority in FIFO order."""
    b = s.broker
    rng = random.Random(7)
    jobs = [job(f"j{i:05}", priority=rng.randint(0, 9)) for i in range(10_000)]
    for start in range(0, len(jobs), 1000):
        answers = b.enqueue(Q, jobs[start : start + 1000])
        assert all(e.created for e in answers), "every job of the batch has a new id"
    expected = [j.id for j in sorted(jobs, key=lambda j: -j.priority)]  # sort is stable: FIFO
    got: list[str] = []
    for _ in range(10):
        got += await ids(b, 1000)
    first_wrong = next(
        (i for i, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e), None
    )
    assert got == expected, (
        f"jobs should come out by priority (9 first), then in the order enqueued; "
        f"{len(got)} came out, the first out of place at position {first_wrong}"
    )
    left = await ids(b, 1000)
    assert left == [], f"all 10,000 were handed out, yet more came: {left[:5]}"


async def check_a_delayed_job_is_not_fetchable_before_it_is_due_and_is_promoted_after(
    s: Subject,
) -> None:
    """A delayed job reads scheduled and is not handed out until its delay has passed."""
    b = s.broker
    b.enqueue(Q, [job("later", delay_ms=BRIEF_MS)])
    state = b.job_state(Q, "later").state
    assert state == "scheduled", f"a delayed job reads {state}"
    fetched = await b.fetch(Q, 1, LONG_MS, "w1")
    assert fetched.jobs == [], f"a job due in {BRIEF_MS} ms was handed out: {fetched.jobs}"
    due = fetched.next_due_ms
    assert due is not None, "a fetch that finds only a delayed job should say when it is due"
    assert 0 < due <= BRIEF_MS, f"next_due_ms should be in (0, {BRIEF_MS}], not {due}"
    s.elapse(BRIEF_MS)
    got = await ids(b)
    assert got == ["later"], f"once due, the delayed job should be handed out: {got}"


async def check_a_promoted_job_queues_behind_jobs_already_ready_at_its_priority(
    s: Subject,
) -> None:
    """A delayed job that becomes due is ready after the jobs of its priority already ready."""
    b = s.broker
    b.enqueue(Q, [job("delayed", delay_ms=SHORT_MS)])
    b.enqueue(Q, [job("first"), job("urgent", priority=9)])
    s.elapse(SHORT_MS)
    got = await ids(b)
    assert got == ["urgent", "first", "delayed"], (
        f"urgent, then first, then the promoted job: {got}"
    )


async def check_a_paused_queue_hands_out_nothing_until_resumed(s: Subject) -> None:
    """A paused queue hands out nothing and says it is paused; resumed, it hands out again."""
    b = s.broker
    b.enqueue(Q, [job("a")])
    b.set_paused(Q, True)
    fetched = await b.fetch(Q, 1, LONG_MS, "w1")
    got = (fetched.jobs, fetched.paused)
    assert got == ([], True), f"a paused queue's fetch: (jobs, paused) = {got}"
    assert b.inspector.queue(Q).paused, "info should say the queue is paused"
    b.set_paused(Q, False)
    assert not b.inspector.queue(Q).paused, "info should say the resumed queue is not paused"
    got_ids = await ids(b)
    assert got_ids == ["a"], f"a resumed queue should hand out its job: {got_ids}"


async def check_an_invalid_queue_name_is_refused(s: Subject) -> None:
    """A queue name with characters outside the allowed set raises `ConfigurationError`."""
    try:
        s.broker.enqueue("no spaces!", [job("a")])
    except ConfigurationError as e:
        said = str(e)
    else:
        raise AssertionError("enqueue to the queue 'no spaces!' should raise ConfigurationError")
    wanted = "queue name 'no spaces!' is not allowed"
    assert wanted in said, f"the error should say {wanted!r}, not {said!r}"


async def check_a_window_key_returns_the_first_job_inside_the_window_and_a_new_one_after(
    s: Subject,
) -> None:
    """An idempotency key in window mode answers its first job until its TTL passes."""
    b = s.broker
    keyed = {"idempotency_key": "welcome:42", "idempotency_ttl_ms": BRIEF_MS}
    first = b.enqueue(Q, [job("first", **keyed)])
    assert first == [Enqueued("first", created=True)], f"the key's first job: {first}"
    await b.ack(Q, [ok(await take_one(b))])  # the window holds after the job finished
    second = b.enqueue(Q, [job("second", **keyed)])
    assert second == [Enqueued("first", created=False)], f"inside the window: {second}"
    s.elapse(BRIEF_MS)
    third = b.enqueue(Q, [job("third", **keyed)])
    assert third == [Enqueued("third", created=True)], f"after the window: {third}"


async def _until_finished_key_is_released_when_the_job_ends(s: Subject, key: str) -> None:
    b = s.broker
    keyed = {"idempotency_key": key, "idempotency_mode": "until_finished"}
    b.enqueue(Q, [job("first", **keyed)])
    second = b.enqueue(Q, [job("second", **keyed)])
    assert second == [Enqueued("first", created=False)], f"while first is queued: {second}"
    await b.ack(Q, [ok(await take_one(b))])
    third = b.enqueue(Q, [job("third", **keyed)])
    assert third == [Enqueued("third", created=True)], f"after first succeeded: {third}"


async def check_an_until_finished_key_is_released_when_the_job_ends(s: Subject) -> None:
    """An until_finished key answers its job until the job succeeds, then frees itself."""
    await _until_finished_key_is_released_when_the_job_ends(s, "sync")


async def check_a_long_until_finished_key_is_released_when_the_job_ends(s: Subject) -> None:
    """As the short key's check, with a key of 400 bytes of UTF-8.

    The key travels inside the job's meta, packed by the client, and is read back when the
    job ends: Redis's msgpack packs a key of 32 bytes or more as str8 or str16, not fixstr.
    """
    await _until_finished_key_is_released_when_the_job_ends(s, "invoice-2026-11-28-" + "é" * 200)


async def check_an_until_finished_key_is_released_when_the_job_dies(s: Subject) -> None:
    """An until_finished key frees itself when its job fails for good."""
    b = s.broker
    keyed = {"idempotency_key": "sync", "idempotency_mode": "until_finished"}
    b.enqueue(Q, [job("first", max_attempts=1, **keyed)])
    await b.ack(Q, [fail(await take_one(b))])
    second = b.enqueue(Q, [job("second", **keyed)])
    assert second == [Enqueued("second", created=True)], f"after first died: {second}"


CHECKS: tuple[Check, ...] = (
    check_enqueue_creates_new_jobs_and_reports_a_known_id_as_a_duplicate,
    check_a_finished_job_id_stays_a_duplicate_while_its_result_is_kept,
    check_fetch_leases_a_job_with_its_payload_attempt_one_and_a_token,
    check_fetch_says_whether_ready_jobs_are_left_behind_what_it_handed_out,
    check_jobs_come_out_by_priority_then_fifo_across_ten_thousand_jobs,
    check_a_delayed_job_is_not_fetchable_before_it_is_due_and_is_promoted_after,
    check_a_promoted_job_queues_behind_jobs_already_ready_at_its_priority,
    check_a_paused_queue_hands_out_nothing_until_resumed,
    check_an_invalid_queue_name_is_refused,
    check_a_window_key_returns_the_first_job_inside_the_window_and_a_new_one_after,
    check_an_until_finished_key_is_released_when_the_job_ends,
    check_a_long_until_finished_key_is_released_when_the_job_ends,
    check_an_until_finished_key_is_released_when_the_job_dies,
)
