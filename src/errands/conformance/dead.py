"""Checks of the dead set (redrive, purge, listing, its cap) and of maintenance passes."""

from __future__ import annotations

import json

import msgspec

from errands.broker.base import Broker, BrokerSettings
from errands.broker.types import AckCode, JobSnapshot, MaintenanceReport
from errands.broker.views import MAX_PAGE
from errands.conformance.jobs import Q, ids, job, kill, ok, retry, take, take_one
from errands.conformance.subject import BRIEF_MS, LONG_MS, SHORT_MS, Check, Subject
from errands.states import JobState

__all__ = ["CHECKS"]


def _dead_ids(b: Broker) -> list[str]:
    return [dead.id for dead in b.inspector.dead(Q, limit=MAX_PAGE).items]


async def check_redrive_moves_a_dead_job_back_to_ready_with_fresh_attempts_and_no_result(
    s: Subject,
) -> None:
    """A redriven job is queued again as new: attempt 1, every attempt left, no outcome."""
    b = s.broker
    b.enqueue(Q, [job("a", max_attempts=2)])
    for _ in range(2):
        await b.ack(Q, [retry(await take_one(b))])
    assert b.inspector.queue(Q).dead == 1, "a job out of attempts should be dead"
    redriven = b.redrive(Q)
    assert redriven == ["a"], f"redrive should answer the job it moved: {redriven}"
    state = b.job_state(Q, "a")
    assert state == JobSnapshot(JobState.QUEUED, None, 0), f"a redriven job reads {state}"
    assert b.inspector.queue(Q).dead == 0, "the redriven job should leave the dead set"
    d = await take_one(b)
    assert d.attempt == 1, f"a redriven job runs as attempt 1, not {d.attempt}"
    codes = await b.ack(Q, [retry(d)])
    assert codes == [AckCode.RETRYING], f"a redriven job has its attempts again: {codes}"


async def check_redrive_by_id_moves_only_dead_jobs(s: Subject) -> None:
    """Redriving named ids moves the dead ones and skips the live and unknown ones."""
    b = s.broker
    await kill(b, "dead")
    b.enqueue(Q, [job("alive")])
    redriven = b.redrive(Q, ["alive", "ghost", "dead"])
    assert redriven == ["dead"], f"only the dead job should be redriven: {redriven}"


async def check_purge_deletes_dead_jobs_for_good(s: Subject) -> None:
    """Purge deletes the named dead jobs, else the oldest up to `limit`; they cannot return."""
    b = s.broker
    for job_id in ("a", "b", "c"):
        await kill(b, job_id)
    purged = b.purge(Q, ["b", "ghost"])
    assert purged == 1, f"purging b and an unknown id should delete 1 job, not {purged}"
    purged = b.purge(Q, limit=1)
    assert purged == 1, f"purging with limit=1 should delete 1 job, not {purged}"
    left = _dead_ids(b)
    assert left == ["c"], f"the oldest (a) should have gone first, leaving c: {left}"
    purged = b.purge(Q)
    assert purged == 1, f"purging the rest should delete 1 job, not {purged}"
    assert b.inspector.queue(Q).dead == 0, "the dead set should be empty"
    redriven = b.redrive(Q, ["a", "b", "c"])
    assert redriven == [], f"purged jobs cannot be redriven: {redriven}"


async def check_dead_pages_list_the_oldest_first_with_the_brokers_time_of_death(
    s: Subject,
) -> None:
    """A page of dead jobs lists the oldest first, with the broker's time of death."""
    b = s.broker
    before = s.now_ms() / 1000
    await kill(b, "a")
    s.elapse(5)
    await kill(b, "b")
    dead = b.inspector.dead(Q, limit=1).items
    got = [d.id for d in dead]
    assert got == ["a"], f"the oldest dead job: {got}"
    died = dead[0].died_at
    now = s.now_ms() / 1000
    assert before - 1 <= died <= now + 1, f"died at {died} s, not between {before} and {now}"


async def check_the_dead_set_cap_drops_the_oldest_dead_job(s: Subject) -> None:
    """A death past `dead_max_count` drops the oldest dead job at once."""
    b = s.broker
    b.settings = BrokerSettings(dead_max_count=2)
    for job_id in ("dead-1", "dead-2", "dead-3"):
        await kill(b, job_id)
        s.elapse(2)
    left = _dead_ids(b)
    assert left == ["dead-2", "dead-3"], f"a cap of 2 should keep the newest two: {left}"
    assert b.inspector.queue(Q).dead == 2, "info should count the 2 kept"


async def check_another_workers_maintenance_pass_inside_the_lock_returns_none(
    s: Subject,
) -> None:
    """While one worker holds the maintenance lock, another's pass answers None."""
    b = s.broker
    report = await b.maintain(Q, "w1", BRIEF_MS)
    assert report == MaintenanceReport(0, 0, 0, 0, 0, 0), f"a pass with nothing to do: {report}"
    assert await b.maintain(Q, "w2", BRIEF_MS) is None, "w1 holds the lock: w2 should get None"
    again = await b.maintain(Q, "w1", BRIEF_MS)
    assert again is not None, "the lock's owner may pass again"
    s.elapse(BRIEF_MS)
    later = await b.maintain(Q, "w2", BRIEF_MS)
    assert later is not None, "once the lock expired, w2 may pass"


async def check_a_maintenance_pass_with_more_to_do_than_its_limit_says_it_is_saturated(
    s: Subject,
) -> None:
    """A pass stops at `maintenance_limit` and says it is saturated; the next does the rest."""
    b = s.broker
    b.enqueue(Q, [job(f"j{i}", result_ttl_ms=SHORT_MS) for i in range(5)])
    await b.ack(Q, [ok(d) for d in await take(b, 5)])
    s.elapse(SHORT_MS)
    b.settings = msgspec.structs.replace(b.settings, maintenance_limit=3)
    first = await b.maintain(Q, "w1", LONG_MS)
    assert first is not None, "the first pass should run"
    got = (first.results_expired, first.saturated)
    assert got == (3, True), f"5 results to expire, limit 3: (expired, saturated) = {got}"
    second = await b.maintain(Q, "w1", LONG_MS)
    assert second is not None, "the owner's second pass should run"
    got = (second.results_expired, second.saturated)
    assert got == (2, False), f"the second pass: (expired, saturated) = {got}"


async def check_maintenance_promotes_reaps_and_expires_results_and_keys(s: Subject) -> None:
    """One pass promotes due jobs, reaps expired leases, expires results and idempotency keys."""
    b = s.broker
    b.enqueue(Q, [job("leased"), job("finished", result_ttl_ms=SHORT_MS)])
    leased = await take(b, 2, lease_ms=SHORT_MS)
    assert [d.id for d in leased] == ["leased", "finished"], f"fetched {leased}"
    await b.ack(Q, [ok(leased[1])])
    b.enqueue(Q, [job("keyed", idempotency_key="k", idempotency_ttl_ms=SHORT_MS)])
    b.enqueue(Q, [job("due", delay_ms=SHORT_MS)])
    s.elapse(SHORT_MS)
    report = await b.maintain(Q, "w1", LONG_MS)
    wanted = MaintenanceReport(
        promoted=1,
        reaped=1,
        results_expired=1,
        idempotency_expired=1,
        dead_trimmed=0,
        workers_dropped=0,
    )
    assert report == wanted, f"the pass reported {report}, not {wanted}"
    got = await ids(b)
    assert got == ["leased", "keyed", "due"], f"reaped first, then in order: {got}"


async def check_maintenance_drops_dead_jobs_past_the_cap_or_the_age_limit(s: Subject) -> None:
    """Maintenance trims the dead set to `dead_max_count` and drops jobs older than the age."""
    b = s.broker
    for job_id in ("dead-1", "dead-2", "dead-3"):
        await kill(b, job_id)
    b.settings = BrokerSettings(dead_max_count=2, dead_max_age_ms=BRIEF_MS)
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None, "the pass should run"
    assert report.dead_trimmed == 1, f"3 dead, cap 2: trimmed {report.dead_trimmed}, not 1"
    left = _dead_ids(b)
    assert left == ["dead-2", "dead-3"], f"the newest two should be kept: {left}"
    s.elapse(BRIEF_MS)
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None, "the pass after the lock expired should run"
    assert report.dead_trimmed == 2, f"both past the age: trimmed {report.dead_trimmed}, not 2"
    assert b.inspector.queue(Q).dead == 0, "the dead set should be empty"


async def check_maintenance_drops_workers_not_seen_for_the_silence_period(s: Subject) -> None:
    """Workers not heard from for `worker_silence_ms`, by the broker's clock, are dropped."""
    b = s.broker
    b.settings = msgspec.structs.replace(b.settings, worker_silence_ms=200)
    # The worker's own clock is ignored: the heartbeat stamps the broker's time.
    await b.heartbeat(Q, "silent", json.dumps({"seen": 10**15}).encode(), [], LONG_MS)
    s.elapse(300)
    await b.heartbeat(Q, "alive", json.dumps({"seen": 0}).encode(), [], LONG_MS)
    await b.heartbeat(Q, "garbled", b"not json", [], LONG_MS)
    report = await b.maintain(Q, "w1", LONG_MS)
    assert report is not None, "the pass should run"
    assert report.workers_dropped == 1, f"only silent should go: {report.workers_dropped}"
    workers = [w.id for w in b.inspector.workers(Q).items]
    assert workers == ["alive", "garbled"], f"the workers left: {workers}"


CHECKS: tuple[Check, ...] = (
    check_redrive_moves_a_dead_job_back_to_ready_with_fresh_attempts_and_no_result,
    check_redrive_by_id_moves_only_dead_jobs,
    check_purge_deletes_dead_jobs_for_good,
    check_dead_pages_list_the_oldest_first_with_the_brokers_time_of_death,
    check_the_dead_set_cap_drops_the_oldest_dead_job,
    check_another_workers_maintenance_pass_inside_the_lock_returns_none,
    check_a_maintenance_pass_with_more_to_do_than_its_limit_says_it_is_saturated,
    check_maintenance_promotes_reaps_and_expires_results_and_keys,
    check_maintenance_drops_dead_jobs_past_the_cap_or_the_age_limit,
    check_maintenance_drops_workers_not_seen_for_the_silence_period,
)
