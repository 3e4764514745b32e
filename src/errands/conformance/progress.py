"""Checks of job progress: stored under the live lease only, read back, deleted with the job.

What a task reports with ``ctx.set_progress`` reaches the broker as a `ProgressReport` (a JSON
record made by `errands.progress.encode_progress`) and is read with `job_progress`, its async
twin, and the inspector's `job`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from errands.broker.base import Broker
from errands.broker.types import AckCode, Delivery, ProgressReport
from errands.conformance.jobs import Q, fail, job, ok, retry, take, take_one
from errands.conformance.subject import SHORT_MS, Check, Subject
from errands.errors import ArgumentError
from errands.progress import MAX_BYTES, Progress, encode_progress

__all__ = ["CHECKS"]

_AT_S = 1_700_000_000.25  # when the checks' reports were made (the task's clock)


def _record(fraction: float | None, message: str = "", **data: Any) -> bytes:
    return encode_progress(fraction, message, data, _AT_S)


def _progress(fraction: float | None, message: str = "", **data: Any) -> Progress:
    return Progress(fraction, message, data, datetime.fromtimestamp(_AT_S, UTC))


async def _report(b: Broker, d: Delivery, record: bytes, token: str | None = None) -> int:
    return await b.report_progress(Q, [ProgressReport(d.id, token or d.token, record)])


async def check_progress_is_stored_only_while_its_job_is_active_under_that_token(
    s: Subject,
) -> None:
    """A report counts only under the job's live lease: never a lost one's, nor a queued job's."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("queued")])
    first = await take_one(b, lease_ms=SHORT_MS)
    stored = await _report(b, first, _record(0.25, "first delivery"))
    assert stored == 1, f"a report under the live lease should be stored: {stored}"
    s.elapse(SHORT_MS)
    again = await take(b, 2)  # the lease expired: the job is reaped and leased again
    second = next((d for d in again if d.id == "a"), None)
    assert second is not None, f"the expired job should be leased again: {again}"
    assert second.token != first.token, f"a new lease has a new token: {second}"
    stale = await _report(b, first, _record(0.9, "the worker that lost it"))
    assert stale == 0, f"a report under a lost lease should not be stored: {stale}"
    got = b.job_progress(Q, "a")
    assert got == _progress(0.25, "first delivery"), f"a lost lease overwrote it: {got}"
    stored = await _report(b, second, _record(0.5, "second delivery"))
    assert stored == 1, f"a report under the new lease should be stored: {stored}"
    b.enqueue(Q, [job("b")])  # queued, not active: whatever token, nothing is stored
    unknown = ProgressReport("ghost", "1", _record(0.1))
    stored = await b.report_progress(Q, [ProgressReport("b", "0", _record(0.1)), unknown])
    assert stored == 0, f"reports of a queued and an unknown job: {stored} stored"
    assert b.job_progress(Q, "b") is None, "a queued job has no progress"


async def check_progress_reads_back_as_reported_latest_first(s: Subject) -> None:
    """A job's progress reads back as reported, through every read, the latest report winning."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("silent")])
    d, quiet = await take(b, 2)
    assert b.job_progress(Q, d.id) is None, "a job that reported nothing has no progress"
    await _report(b, d, _record(0.2, "step 1 of 5"))
    stored = await b.report_progress(
        Q,
        [
            ProgressReport(d.id, d.token, _record(0.4, "step 2 of 5", rows=1200, tags=["x"])),
            ProgressReport(quiet.id, quiet.token, _record(None, "counting")),
        ],
    )
    assert stored == 2, f"a batch of two live reports should store 2: {stored}"
    wanted = _progress(0.4, "step 2 of 5", rows=1200, tags=["x"])
    got = b.job_progress(Q, d.id)
    assert got == wanted, f"job_progress after two reports: {got}"
    got = await b.ajob_progress(Q, d.id)
    assert got == wanted, f"ajob_progress: {got}"
    detail = b.inspector.job(Q, d.id)
    assert detail is not None, "the inspector should see the running job"
    assert detail.progress == wanted, f"the inspector's job shows {detail.progress}"
    got = b.job_progress(Q, quiet.id)
    assert got == _progress(None, "counting"), f"a report with no fraction: {got}"


async def check_progress_goes_when_its_job_succeeds_or_is_cancelled(s: Subject) -> None:
    """A success (one or a batch) or a cancel deletes the job's progress: no memory is left."""
    b = s.broker
    b.enqueue(Q, [job("a"), job("b"), job("c")])
    taken = await take(b, 3)
    for d in taken:
        await _report(b, d, _record(0.9, f"almost done with {d.id}"))
    a, b_, c = sorted(taken, key=lambda d: d.id)
    codes = await b.ack(Q, [ok(a), ok(b_)])
    assert codes == [AckCode.SUCCEEDED] * 2, f"two successes in one ack: {codes}"
    for job_id in ("a", "b"):
        got = b.job_progress(Q, job_id)
        assert got is None, f"{job_id} succeeded, its progress should be gone: {got}"
    b.cancel(Q, "c")
    codes = await b.ack(Q, [retry(c)])
    assert codes == [AckCode.CANCELLED], f"a retry of a job asked to stop: {codes}"
    got = b.job_progress(Q, "c")
    assert got is None, f"a cancelled job's progress should be gone: {got}"
    stored = await _report(b, a, _record(1.0, "too late"))
    assert stored == 0, f"a report after the success should not be stored: {stored}"


async def check_progress_stays_across_retries_and_in_the_dead_set_until_purged(
    s: Subject,
) -> None:
    """A retried job keeps its progress, a dead one too ("died at step 3"); a purge deletes it."""
    b = s.broker
    b.enqueue(Q, [job("a", max_attempts=2)])
    d = await take_one(b)
    await _report(b, d, _record(0.2, "step 1 of 5"))
    await b.ack(Q, [retry(d)])
    got = b.job_progress(Q, "a")
    assert got == _progress(0.2, "step 1 of 5"), f"a job waiting to retry keeps it: {got}"
    d = await take_one(b)
    await _report(b, d, _record(0.6, "step 3 of 5"))
    codes = await b.ack(Q, [fail(d)])
    assert codes == [AckCode.DEAD], f"a failure for good should be dead: {codes}"
    wanted = _progress(0.6, "step 3 of 5")
    got = b.job_progress(Q, "a")
    assert got == wanted, f"a dead job keeps where it got: {got}"
    detail = b.inspector.job(Q, "a")
    assert detail is not None, "the inspector should see the dead job"
    assert detail.progress == wanted, f"the inspector shows {detail.progress}"
    purged = b.purge(Q, ["a"])
    assert purged == 1, f"the dead job should be purged: {purged}"
    got = b.job_progress(Q, "a")
    assert got is None, f"a purged job's progress should be gone: {got}"


async def check_a_progress_record_over_its_bound_is_refused(s: Subject) -> None:
    """Over `MAX_BYTES` a report is refused where it is made, and the broker skips one too."""
    b = s.broker
    refusal = ""
    try:
        encode_progress(0.5, "big", {"blob": "x" * MAX_BYTES}, _AT_S)
    except ArgumentError as error:
        refusal = str(error)
    assert f"{MAX_BYTES:,}" in refusal, f"a report over the bound, refused at the call: {refusal!r}"
    b.enqueue(Q, [job("a")])
    d = await take_one(b)
    await _report(b, d, _record(0.1, "small"))
    oversized = b'{"p":0.5,"m":"","d":{"blob":"' + b"x" * MAX_BYTES + b'"},"t":0}'
    stored = await _report(b, d, oversized)
    assert stored == 0, f"a record over {MAX_BYTES} bytes should not be stored: {stored}"
    got = b.job_progress(Q, "a")
    assert got == _progress(0.1, "small"), f"the record before it should stay: {got}"


CHECKS: tuple[Check, ...] = (
    check_progress_is_stored_only_while_its_job_is_active_under_that_token,
    check_progress_reads_back_as_reported_latest_first,
    check_progress_goes_when_its_job_succeeds_or_is_cancelled,
    check_progress_stays_across_retries_and_in_the_dead_set_until_purged,
    check_a_progress_record_over_its_bound_is_refused,
)
