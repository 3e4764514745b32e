"""Checks of the limiters: rate slots booked at fetch, concurrency caps, back-off, bounds."""

from __future__ import annotations

import msgspec

from errands.broker.types import AckCode, CancelCode, Delivery, Lease, Outcome
from errands.conformance.jobs import Q, ids, job, ok, record, take, take_one
from errands.conformance.subject import LONG_MS, SHORT_MS, Check, Subject
from errands.errors import MAX_RATE_LIMITED
from errands.limits import Limiter, Rate, pack_limiters

RATE_MS = 300  # the interval of the checks' rate: long against the calls between two fetches


def _use(s: Subject, *limiters: Limiter) -> None:
    """Let the subject's fetches carry `limiters`, as a worker of an app declaring them does."""
    s.broker.settings = msgspec.structs.replace(s.broker.settings, limits=pack_limiters(limiters))


def _limited(d: Delivery, delay_ms: int) -> Outcome:
    """The outcome of a run whose service refused it (RateLimited(retry_after=delay_ms/1000))."""
    error = {"type": "errands.errors.RateLimited", "message": "rate limited"}
    outcome = record("failed", error=error, attempts=d.attempt)
    return Outcome(d.id, d.token, "limited", outcome, retry_delay_ms=delay_ms)


async def check_a_rate_hands_out_one_job_per_interval_and_spends_no_attempt(s: Subject) -> None:
    """A job over its rate waits in delayed for a slot booked for it, its attempt unspent."""
    _use(s, Limiter("r", rate=Rate(1, RATE_MS / 1000)))
    s.broker.enqueue(Q, [job(i, limits=("r|",)) for i in ("a", "b", "c")])
    fetched = await s.broker.fetch(Q, 10, LONG_MS, "w1")
    assert [d.id for d in fetched.jobs] == ["a"], f"one job per interval: {fetched.jobs}"
    due = fetched.next_due_ms
    assert due is not None, "the next job waits in delayed"
    assert 0 < due <= RATE_MS, f"the next job is due within one interval: {due}"
    assert await take(s.broker, 10) == [], "the rate is spent: nothing before the next slot"
    s.elapse(RATE_MS)
    [second] = await take(s.broker, 10)
    assert (second.id, second.attempt) == ("b", 1), f"b, on its first attempt: {second}"
    s.elapse(RATE_MS)
    assert await ids(s.broker, 10) == ["c"], "c in the slot after"


async def check_a_burst_allows_that_many_at_once(s: Subject) -> None:
    """A burst of 3 hands out 3 jobs at once after a quiet spell, then one per interval."""
    _use(s, Limiter("r", rate=Rate(1, 60), burst=3))
    s.broker.enqueue(Q, [job(f"j{i}", limits=("r|",)) for i in range(5)])
    assert await ids(s.broker, 10) == ["j0", "j1", "j2"], "a burst of three"


async def check_a_rate_of_many_per_ms_admits_them_in_one_fetch(s: Subject) -> None:
    """A rate of a million a second lets a batch out at once: its slots fall in this ms."""
    _use(s, Limiter("r", rate=Rate(1_000_000, 1)))
    s.broker.enqueue(Q, [job(f"j{i}", limits=("r|",)) for i in range(50)])
    assert len(await ids(s.broker, 50)) == 50, "all 50 inside one ms of slots"


async def check_keys_are_limited_apart(s: Subject) -> None:
    """Two keys of one limiter have a rate each."""
    _use(s, Limiter("r", rate=Rate(1, 60), key=str))
    s.broker.enqueue(Q, [job(i, limits=(f"r|{i[0]}",)) for i in ("x1", "x2", "y1")])
    assert sorted(await ids(s.broker, 10)) == ["x1", "y1"], "one job per key"


async def check_a_cap_holds_and_a_finished_job_wakes_the_oldest_waiter(s: Subject) -> None:
    """At most `concurrency` jobs active; an ack or a release frees a slot for the next."""
    _use(s, Limiter("c", concurrency=2))
    s.broker.enqueue(Q, [job(i, limits=("c|",)) for i in ("a", "b", "c", "d")])
    first = await take(s.broker, 10)
    assert [d.id for d in first] == ["a", "b"], f"two at once: {first}"
    assert await take(s.broker, 10) == [], "the cap is full"
    assert await s.broker.ack(Q, [ok(first[0])]) == [AckCode.SUCCEEDED]
    [third] = await take(s.broker, 10)
    assert (third.id, third.attempt) == ("c", 1), f"the oldest waiter, unspent: {third}"
    assert await s.broker.release(Q, [Lease(first[1].id, first[1].token)]) == 1
    got = await ids(s.broker, 10)
    assert len(got) == 1, f"one slot freed, one job: {got}"


async def check_an_expired_lease_frees_its_slot(s: Subject) -> None:
    """A dead worker's slot comes back when its lease is reaped."""
    _use(s, Limiter("c", concurrency=1))
    s.broker.enqueue(Q, [job(i, limits=("c|",)) for i in ("a", "b")])
    await take_one(s.broker, lease_ms=SHORT_MS)
    assert await take(s.broker, 10) == [], "the cap is full"
    s.elapse(SHORT_MS)
    got = await ids(s.broker, 10, worker="w2")
    assert len(got) == 1, f"the reaped lease freed its slot for one job: {got}"


async def check_rate_limited_spends_no_attempt_and_backs_the_limiter_off(s: Subject) -> None:
    """A limited outcome runs the job again unspent; nothing starts on its limiter before."""
    _use(s, Limiter("r", rate=Rate(100, 1)))
    s.broker.enqueue(Q, [job(i, limits=("r|",), max_attempts=1) for i in ("a", "b")])
    a = await take_one(s.broker)
    assert await s.broker.ack(Q, [_limited(a, RATE_MS)]) == [AckCode.RETRYING]
    assert await take(s.broker, 10) == [], "the limiter backs off: b waits too"
    s.elapse(RATE_MS)
    got: list[Delivery] = []
    for _ in range(4):
        got += await take(s.broker, 10)
        if len(got) == 2:
            break
        s.elapse(20)
    assert sorted(d.id for d in got) == ["a", "b"], f"both after the back-off: {got}"
    assert [d.attempt for d in got if d.id == "a"] == [1], "a's attempt was not spent"


async def check_rate_limited_spends_attempts_past_its_free_runs(s: Subject) -> None:
    """A job refused by its service more than MAX_RATE_LIMITED times spends attempts."""
    s.broker.enqueue(Q, [job("a", limits=("r|",), max_attempts=1)])
    for _ in range(MAX_RATE_LIMITED):
        d = await take_one(s.broker)
        assert await s.broker.ack(Q, [_limited(d, 0)]) == [AckCode.RETRYING]
    d = await take_one(s.broker)
    assert d.attempt == 1, f"its free runs spent no attempt: {d}"
    assert await s.broker.ack(Q, [_limited(d, 0)]) == [AckCode.DEAD], "then it spends its one"


async def check_a_limiter_the_worker_does_not_know_is_not_applied(s: Subject) -> None:
    """A job naming a limiter absent from the fetch's configuration runs as if unlimited."""
    _use(s, Limiter("other", concurrency=1))
    s.broker.enqueue(Q, [job(i, limits=("gone|",)) for i in ("a", "b")])
    assert await ids(s.broker, 10) == ["a", "b"]


async def check_a_cancelled_waiter_is_not_woken(s: Subject) -> None:
    """A job cancelled while it waits for a slot stays cancelled when the slot frees."""
    _use(s, Limiter("c", concurrency=1))
    s.broker.enqueue(Q, [job(i, limits=("c|",)) for i in ("a", "b", "c")])
    a = await take_one(s.broker)
    assert await take(s.broker, 10) == []
    assert s.broker.cancel(Q, "b") == CancelCode.CANCELLED
    assert await s.broker.ack(Q, [ok(a)]) == [AckCode.SUCCEEDED]
    assert await ids(s.broker, 10) == ["c"], "c takes the slot; b stays cancelled"


async def check_limited_jobs_are_handed_out_only_to_places_that_start_them(s: Subject) -> None:
    """A fetch with room for one limited job leaves the other ready; unlimited ones go."""
    _use(s, Limiter("c", concurrency=10))
    s.broker.enqueue(Q, [job(i, limits=("c|",)) for i in ("a", "b")] + [job("free")])
    fetched = await s.broker.fetch(Q, 10, LONG_MS, "w1", limited=1)
    assert [d.id for d in fetched.jobs] == ["a", "free"], f"one place: {fetched.jobs}"
    got = await take(s.broker, 10, worker="w2")
    assert [(d.id, d.attempt) for d in got] == [("b", 1)], f"b waited in ready: {got}"


CHECKS: tuple[Check, ...] = (
    check_a_rate_hands_out_one_job_per_interval_and_spends_no_attempt,
    check_a_burst_allows_that_many_at_once,
    check_a_rate_of_many_per_ms_admits_them_in_one_fetch,
    check_keys_are_limited_apart,
    check_a_cap_holds_and_a_finished_job_wakes_the_oldest_waiter,
    check_an_expired_lease_frees_its_slot,
    check_rate_limited_spends_no_attempt_and_backs_the_limiter_off,
    check_rate_limited_spends_attempts_past_its_free_runs,
    check_a_limiter_the_worker_does_not_know_is_not_applied,
    check_a_cancelled_waiter_is_not_woken,
    check_limited_jobs_are_handed_out_only_to_places_that_start_them,
)
