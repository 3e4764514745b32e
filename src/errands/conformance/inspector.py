"""Checks of the operator's read model: queues, jobs, workers and pages of dead jobs.

What ``errands queues``, ``errands status`` and ``errands dead list`` show (and the HTTP API
and the dashboard) comes from these reads, so every broker answers them alike.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

from errands.broker.base import Broker
from errands.broker.types import AckCode, Delivery, Lease, NewJob, Outcome, OutcomeKind
from errands.broker.views import DeadFilter, DeadJob, Page
from errands.conformance.jobs import Q, job, take
from errands.conformance.subject import LONG_MS, Check, Subject
from errands.errors import ArgumentError
from errands.message import JobRecord, encode_record
from errands.states import JobState

__all__ = ["CHECKS"]

_ENQUEUED_AT = 1_700_000_000.0


def _task_job(job_id: str, task: str = "billing.charge", **options: Any) -> NewJob:
    """A job whose payload is a real record (the inspector reads its task and arguments)."""
    record = JobRecord(
        id=job_id,
        task=task,
        queue=Q,
        args=[job_id],
        kwargs={"amount": 3},
        priority=options.get("priority", 0),
        enqueued_at=options.pop("enqueued_at", _ENQUEUED_AT),
        headers={"tenant": "acme"},
    )
    return NewJob(id=job_id, payload=encode_record(record, 1 << 20), **options)


def _failed(
    d: Delivery, kind: OutcomeKind, error_type: str, message: str, tb: str = "tb"
) -> Outcome:
    error = {"type": error_type, "message": message, "traceback": tb}
    outcome = msgspec.json.encode({"state": "failed", "error": error, "attempts": d.attempt})
    return Outcome(d.id, d.token, kind, outcome)


async def _kill_all(b: Broker, jobs: list[NewJob], error_type: str = "KeyError") -> None:
    """Enqueue `jobs` with one attempt and fail them in one ack (one time of death)."""
    b.enqueue(Q, [msgspec.structs.replace(j, max_attempts=1) for j in jobs])
    taken = await take(b, len(jobs))
    codes = await b.ack(Q, [_failed(d, "failed", error_type, f"no {d.id}") for d in taken])
    assert codes == [AckCode.DEAD] * len(jobs)


def _all_pages(b: Broker, **options: Any) -> tuple[list[str], int]:
    """Every dead job id, following cursors; and how many pages it took."""
    seen: list[str] = []
    page: Page[DeadJob] = b.inspector.dead(Q, **options)
    pages = 1
    seen += [j.id for j in page.items]
    while page.cursor is not None:
        page = b.inspector.dead(Q, cursor=page.cursor, **options)
        seen += [j.id for j in page.items]
        pages += 1
        assert pages < 100, "the cursor never ends"
    return seen, pages


async def check_a_queue_summary_counts_its_jobs_its_oldest_ready_job_and_its_consumers(
    s: Subject,
) -> None:
    """`queue` counts jobs by state, the oldest ready job across priorities, live workers."""
    b = s.broker
    now_s = s.now_ms() / 1000
    b.enqueue(Q, [_task_job("new", priority=9, enqueued_at=now_s - 5)])
    b.enqueue(Q, [_task_job("old", priority=0, enqueued_at=now_s - 60)])
    b.enqueue(Q, [_task_job("later", delay_ms=LONG_MS)])
    await b.heartbeat(Q, "w1", b'{"host": "h", "pid": 7, "queues": ["conformance"]}', [], LONG_MS)

    summary = b.inspector.queue(Q)
    assert (summary.ready, summary.delayed, summary.active, summary.dead) == (2, 1, 0, 0)
    assert summary.consumers == 1
    assert summary.stats == {"enqueued": 3}
    assert summary.oldest_ready_age_s is not None
    assert 59 <= summary.oldest_ready_age_s <= 62  # the low-priority job, behind the other
    again = await b.inspector.aqueue(Q)
    assert msgspec.structs.replace(again, oldest_ready_age_s=None) == msgspec.structs.replace(
        summary, oldest_ready_age_s=None
    )

    await take(b, 2)
    assert b.inspector.queue(Q).oldest_ready_age_s is None
    assert b.inspector.queue("never-used").ready == 0


async def check_queues_come_by_name_in_pages(s: Subject) -> None:
    """`queues` lists every used queue by name, a page at a time."""
    b = s.broker
    for name in ("c-q", "a-q", "b-q"):
        b.enqueue(name, [job(f"{name}-1")])
    first = b.inspector.queues(limit=2)
    assert [q.name for q in first.items] == ["a-q", "b-q"]
    assert first.cursor == "b-q"
    rest = await b.inspector.aqueues(after=first.cursor, limit=2)
    assert [q.name for q in rest.items] == ["c-q"]
    assert rest.cursor is None
    assert rest.items[0].ready == 1


async def check_a_job_shows_its_record_attempts_errors_worker_and_timings(s: Subject) -> None:
    """`job` shows record, attempts, worker, start, lease, and a retried attempt's error (cut)."""
    b = s.broker
    b.enqueue(Q, [_task_job("j", priority=4, max_attempts=3, idempotency_key="charge-j")])
    queued = b.inspector.job(Q, "j")
    assert queued is not None
    assert (queued.state, queued.task, queued.args, queued.kwargs) == (
        JobState.QUEUED,
        "billing.charge",
        ["j"],
        {"amount": 3},
    )
    assert (queued.priority, queued.max_attempts, queued.attempts) == (4, 3, 0)
    assert queued.headers == {"tenant": "acme"}
    assert queued.enqueued_at == _ENQUEUED_AT
    assert queued.idempotency_key == "charge-j"

    assert queued.started_at is None
    fetched_s = s.now_ms() / 1000
    [d] = await take(b, worker="w-7")
    active = await b.inspector.ajob(Q, "j")
    assert active is not None
    assert (active.state, active.worker, active.attempts) == (JobState.ACTIVE, "w-7", 1)
    assert active.started_at is not None
    assert fetched_s - 0.01 <= active.started_at <= s.now_ms() / 1000 + 0.01
    assert active.lease_expires_at is not None
    assert active.lease_expires_at > s.now_ms() / 1000

    tb = "Traceback (most recent call last):\n" + "x" * 5000 + "\nConnectionError: down"
    await b.ack(Q, [_failed(d, "retrying", "ConnectionError", "gateway down", tb)])
    retrying = b.inspector.job(Q, "j")
    assert retrying is not None
    assert retrying.state == JobState.SCHEDULED
    assert retrying.due_at is not None
    [first] = retrying.history
    assert (first.attempt, first.worker) == (1, "w-7")
    assert first.error is not None
    assert (first.error.type, first.error.message) == ("ConnectionError", "gateway down")
    assert first.error.traceback is not None
    assert len(first.error.traceback) == 4000  # cut to its end, where the error is
    assert first.error.traceback.endswith("ConnectionError: down")


async def check_a_dead_job_keeps_its_history_and_error_and_a_purged_one_is_gone(s: Subject) -> None:
    """A dead job keeps its arguments, error and earlier attempts until it is purged."""
    b = s.broker
    b.enqueue(Q, [_task_job("j", max_attempts=2)])
    [d] = await take(b)
    await b.ack(Q, [_failed(d, "retrying", "TimeoutError", "slow")])
    s.elapse(1)
    second_s = s.now_ms() / 1000
    [d] = await take(b)
    assert await b.ack(Q, [_failed(d, "failed", "KeyError", "'sku'")]) == [AckCode.DEAD]

    dead = b.inspector.job(Q, "j")
    assert dead is not None
    assert dead.state == JobState.DEAD
    assert dead.started_at is not None
    assert dead.started_at >= second_s - 0.01, "when its last attempt started"
    assert dead.died_at is not None
    assert dead.error is not None
    assert (dead.error.type, dead.error.message) == ("KeyError", "'sku'")
    assert [a.error.type for a in dead.history if a.error] == ["TimeoutError"]
    assert dead.args == ["j"]

    assert b.purge(Q, ["j"]) == 1
    purged = b.inspector.job(Q, "j")
    assert purged is None or (purged.history == [] and purged.args is None)


async def check_history_keeps_the_last_five_failed_attempts(s: Subject) -> None:
    """Only the last 5 failed attempts are kept, and a success drops them with the job."""
    b = s.broker
    b.enqueue(Q, [_task_job("j", max_attempts=10)])
    for attempt in range(1, 8):
        [d] = await take(b)
        await b.ack(Q, [_failed(d, "retrying", "ValueError", f"attempt {attempt}")])
        s.elapse(1)
    detail = b.inspector.job(Q, "j")
    assert detail is not None
    assert [a.attempt for a in detail.history] == [3, 4, 5, 6, 7]

    [d] = await take(b)
    await b.ack(Q, [Outcome(d.id, d.token, "succeeded", b'{"state":"succeeded","result":42}')])
    done = b.inspector.job(Q, "j")
    assert done is not None
    assert (done.state, done.result, done.history) == (JobState.SUCCEEDED, 42, [])


async def check_an_unknown_job_is_none(s: Subject) -> None:
    """`job` of an id the broker never saw is None."""
    assert s.broker.inspector.job(Q, "nobody") is None


async def check_jobs_read_many_at_once_as_job_reads_each(s: Subject) -> None:
    """`jobs` gives, in the order asked, what `job` gives for each id (None for an unknown)."""
    b = s.broker
    b.enqueue(Q, [_task_job("a"), _task_job("b", priority=3)])
    ids = ["b", "nobody", "a"]
    assert b.inspector.jobs(Q, ids) == [b.inspector.job(Q, i) for i in ids]
    assert await b.inspector.ajobs(Q, ids) == [b.inspector.job(Q, i) for i in ids]
    assert [j.id if j else None for j in b.inspector.jobs(Q, ids)] == ["b", None, "a"]
    assert b.inspector.jobs(Q, []) == []


async def check_find_job_looks_in_each_queue_given(s: Subject) -> None:
    """`find_job` finds a job in whichever of the queues holds it, None when none does."""
    b = s.broker
    b.enqueue(Q, [_task_job("a")])
    found = b.inspector.find_job(["other", Q], "a")
    assert found is not None
    assert (found.id, found.queue) == ("a", Q)
    assert await b.inspector.afind_job(["other", Q], "a") == found
    assert b.inspector.find_job(["other"], "a") is None
    assert b.inspector.find_job([], "a") is None


async def check_workers_show_the_jobs_they_hold(s: Subject) -> None:
    """`workers` pages the live workers by id, each with the jobs of the queue it holds."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b")])
    taken = await take(b, 2, worker="w-2")
    info = b'{"host": "box", "pid": 42, "queues": ["conformance"], "pool": "process",'
    info += b' "concurrency": 4, "processed": 9}'
    leases = [Lease(d.id, d.token) for d in taken]
    await b.heartbeat(Q, "w-2", info, leases, LONG_MS)
    await b.heartbeat(Q, "w-1", info, [], LONG_MS)

    page = b.inspector.workers(Q, limit=1)
    assert [w.id for w in page.items] == ["w-1"]
    assert page.cursor == "w-1"
    [second] = (await b.inspector.aworkers(Q, after=page.cursor)).items
    assert (second.id, second.host, second.pid, second.pool) == ("w-2", "box", 42, "process")
    assert (second.concurrency, second.processed) == (4, 9)
    assert sorted(second.holding) == ["a", "b"]
    assert abs(second.seen_at - s.now_ms() / 1000) <= 5, f"seen at the broker's time: {second}"


async def check_dead_pages_follow_their_cursor_through_jobs_that_died_at_once(s: Subject) -> None:
    """Pages of jobs that died in one ack (one time of death) follow their cursor, both ways."""
    b = s.broker
    batch = [_task_job(f"d{i:02}") for i in range(25)]  # one ack: one time of death
    await _kill_all(b, batch)
    ids, pages = _all_pages(b, limit=10)
    assert ids == sorted(j.id for j in batch)
    assert pages == 3
    newest, _ = _all_pages(b, limit=7, newest_first=True)
    assert newest == sorted((j.id for j in batch), reverse=True)

    [first] = b.inspector.dead(Q, limit=1).items
    assert (first.task, first.attempts, first.queue) == ("billing.charge", 1, Q)
    assert first.error is not None
    assert (first.error.type, first.error.message) == ("KeyError", "no d00")


async def check_dead_pages_filter_by_task_error_type_and_time(s: Subject) -> None:
    """Dead pages filter by task, error type (or its last part) and time of death."""
    b = s.broker
    await _kill_all(b, [_task_job("a1", task="mail.send"), _task_job("b1")], "KeyError")
    s.elapse(5)
    middle = s.now_ms() / 1000
    s.elapse(5)
    await _kill_all(b, [_task_job("a2", task="mail.send")], "smtplib.SMTPDataError")

    def ids(**where: Any) -> list[str]:
        return _all_pages(b, where=DeadFilter(**where))[0]

    assert ids(task="mail.send") == ["a1", "a2"]
    assert ids(error_type="KeyError") == ["a1", "b1"]
    assert ids(error_type="SMTPDataError") == ["a2"]  # the last part of the name is enough
    assert ids(error_type="DataError") == []  # but not any suffix
    assert ids(since=middle) == ["a2"]
    assert ids(until=middle) == ["a1", "b1"]
    assert ids(task="mail.send", until=middle) == ["a1"]
    page = await b.inspector.adead(Q, where=DeadFilter(task="nobody"))
    assert page.items == []


def _refused(read: Callable[[], object], words: str) -> None:
    try:
        read()
    except ArgumentError as error:
        said = str(error)
    else:
        raise AssertionError(f"should be refused with an ArgumentError saying {words!r}")
    assert words in said, f"the error should say {words!r}: {said}"


async def check_a_page_refuses_a_bad_limit_or_cursor(s: Subject) -> None:
    """A page of 0 or over 1,000 items, or a cursor no page gave, is an ArgumentError."""
    inspector = s.broker.inspector
    for n in (0, 1001):
        _refused(partial(inspector.dead, Q, limit=n), "limit must be an int from 1 to 1000")
        _refused(partial(inspector.queues, limit=n), "limit must be")
    _refused(lambda: inspector.dead(Q, cursor="nonsense"), "is not one a page of dead jobs gave")


CHECKS: tuple[Check, ...] = (
    check_a_queue_summary_counts_its_jobs_its_oldest_ready_job_and_its_consumers,
    check_queues_come_by_name_in_pages,
    check_a_job_shows_its_record_attempts_errors_worker_and_timings,
    check_a_dead_job_keeps_its_history_and_error_and_a_purged_one_is_gone,
    check_history_keeps_the_last_five_failed_attempts,
    check_an_unknown_job_is_none,
    check_jobs_read_many_at_once_as_job_reads_each,
    check_find_job_looks_in_each_queue_given,
    check_workers_show_the_jobs_they_hold,
    check_dead_pages_follow_their_cursor_through_jobs_that_died_at_once,
    check_dead_pages_filter_by_task_error_type_and_time,
    check_a_page_refuses_a_bad_limit_or_cursor,
)
