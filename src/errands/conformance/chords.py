"""Checks of chords: they always end, with the callback's result or a failure saying why.

A member that ends dead, however (it failed, ran out of attempts, stalled), fails its chord:
its queue keeps a note, which `adeliver_chord_failures` turns into the chord's failure. A chord
whose members were not all sent in time, or did not all report before the dead-letter age,
fails in maintenance.
"""

from __future__ import annotations

import msgspec

from errands.broker.base import Broker, BrokerSettings
from errands.broker.types import AckCode, Delivery, Lease, NewJob
from errands.conformance.jobs import Q, fail, ids, job, ok, outcome_of, take, take_one
from errands.conformance.subject import BRIEF_MS, LONG_MS, SHORT_MS, Check, Subject

__all__ = ["CHECKS"]

CHORD = "chord-1"
PLACEHOLDER = b'"__results__"'
_FAILED = "errands.errors.ChordFailed"


def member(job_id: str, index: int, **options: object) -> NewJob:
    """Member `index` of the chord `CHORD`."""
    return job(job_id, chord=CHORD, chord_queue=Q, chord_index=index, **options)


def start(b: Broker, size: int = 2) -> None:
    """Record the chord `CHORD` of `size` members, its callback taking their results."""
    callback = NewJob(id=CHORD, payload=b'{"args": ["__results__"]}')
    assert b.chord_start(Q, CHORD, size, callback, PLACEHOLDER), "a new chord should start"


def error_of(b: Broker, job_id: str) -> dict[str, str]:
    """The error in the outcome of `job_id`."""
    error: dict[str, str] = outcome_of(b.job_state(Q, job_id))["error"]
    return error


async def _start_two_and_take_them(b: Broker) -> list[Delivery]:
    """Start and arm a chord of m0 (one attempt) and m1, and lease both."""
    start(b)
    b.enqueue(Q, [member("m0", 0, max_attempts=1), member("m1", 1)])
    assert b.chord_arm(Q, CHORD), "arming a started chord should answer True"
    fetched = await take(b, 2)
    assert [d.id for d in fetched] == ["m0", "m1"], f"fetched {fetched}"
    return fetched


async def _deliver_one_failure(b: Broker) -> None:
    notes = await b.adeliver_chord_failures(Q)
    assert notes == 1, f"one dead member should leave one note, not {notes}"


async def check_an_armed_chord_calls_back_when_every_member_reported(s: Subject) -> None:
    """The last member to report enqueues the callback, the results in member order."""
    b = s.broker
    start(b)
    b.enqueue(Q, [member("m0", 0), member("m1", 1)])
    assert b.chord_arm(Q, CHORD), "arming a started chord should answer True"
    state = b.job_state(Q, CHORD).state
    assert state == "waiting", f"the callback of an armed chord reads {state}"
    counted = await b.chord_part(Q, CHORD, 1, b"11")
    assert counted == 2, f"the first member's report should answer 2 (counted): {counted}"
    counted = await b.chord_part(Q, CHORD, 0, b"10")
    assert counted == 3, f"the last member's report should answer 3 (called back): {counted}"
    callbacks = [d for d in await take(b, 5) if d.id == CHORD]
    assert len(callbacks) == 1, f"the callback should be ready once: {callbacks}"
    payload = callbacks[0].payload
    wanted = b'{"args": [[10,11]]}'
    assert payload == wanted, f"the results replace the placeholder: {payload!r}, not {wanted!r}"


async def check_a_member_that_fails_for_good_fails_its_chord_naming_it(s: Subject) -> None:
    """A member that dies fails its chord, once the note is delivered, naming the member."""
    b = s.broker
    fetched = await _start_two_and_take_them(b)
    codes = await b.ack(Q, [fail(fetched[0])])
    assert codes == [AckCode.DEAD], f"the member's failure answered {codes}"
    state = b.job_state(Q, CHORD).state
    assert state == "waiting", f"until a worker delivers the note the chord reads {state}"
    await _deliver_one_failure(b)
    error = error_of(b, CHORD)
    assert error["type"] == _FAILED, f"the chord's error: {error}"
    said = "member m0 failed with KeyError: for good"
    assert said in error["message"], f"the message should say {said!r}: {error['message']!r}"
    counted = await b.chord_part(Q, CHORD, 1, b"1")
    assert counted == 0, f"the chord is over: a later report should answer 0, not {counted}"
    notes = await b.adeliver_chord_failures(Q)
    assert notes == 0, f"the note was delivered already: {notes} more"


async def check_a_member_that_stalls_to_death_fails_its_chord(s: Subject) -> None:
    """A member that dies of a stall fails its chord with the JobStalled error."""
    b = s.broker
    start(b, size=1)
    b.enqueue(Q, [member("m0", 0, max_stalls=0)])
    b.chord_arm(Q, CHORD)
    d = await take_one(b, lease_ms=SHORT_MS)
    await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], SHORT_MS, {d.id})
    s.elapse(SHORT_MS)
    got = await ids(b)
    assert got == [], f"its stall was one too many: it should be dead, yet fetched {got}"
    await _deliver_one_failure(b)
    message = error_of(b, CHORD)["message"]
    said = "member m0 failed with errands.errors.JobStalled"
    assert said in message, f"the chord's error should say {said!r}: {message!r}"


async def check_a_purged_member_still_fails_its_chord(s: Subject) -> None:
    """A dead member purged before its note was delivered still fails its chord."""
    b = s.broker
    start(b, size=1)
    b.enqueue(Q, [member("m0", 0, max_attempts=1)])
    b.chord_arm(Q, CHORD)
    await b.ack(Q, [fail(await take_one(b))])
    purged = b.purge(Q, ["m0"])
    assert purged == 1, f"the dead member should be purged: {purged}"
    await _deliver_one_failure(b)
    error = error_of(b, CHORD)
    assert error["type"] == _FAILED, f"the chord's error: {error}"


async def check_redriving_a_dead_member_runs_it_alone_and_its_chord_stays_failed(
    s: Subject,
) -> None:
    """A redriven member runs on its own; its chord fails first and stays failed."""
    b = s.broker
    fetched = await _start_two_and_take_them(b)
    await b.ack(Q, [fail(fetched[0])])
    counted = await b.chord_part(Q, CHORD, 1, b"1")
    assert counted == 2, f"m1's report should be counted (2), not {counted}"
    await b.ack(Q, [ok(fetched[1])])
    # Nobody delivered the note yet: the redrive does, before the member is back.
    redriven = b.redrive(Q, ["m0"])
    assert redriven == ["m0"], f"the dead member should be redriven: {redriven}"
    error = error_of(b, CHORD)
    assert error["type"] == _FAILED, f"the redrive should fail the chord first: {error}"
    again = await take_one(b)
    counted = await b.chord_part(Q, CHORD, 0, b"0")
    assert counted == 0, f"the chord is over: the report should answer 0, not {counted}"
    codes = await b.ack(Q, [ok(again, "alone")])
    assert codes == [AckCode.SUCCEEDED], f"the redriven member's success answered {codes}"
    result = outcome_of(b.job_state(Q, "m0")).get("result")
    assert result == "alone", f"the member keeps its own result, not {result!r}"
    state = b.job_state(Q, CHORD).state
    assert state == "failed", f"the chord should stay failed, not {state}"


async def check_a_chord_whose_members_were_not_all_sent_in_time_fails(s: Subject) -> None:
    """A chord never armed within `chord_send_ms` fails in maintenance: "not all sent"."""
    b = s.broker
    b.settings = msgspec.structs.replace(b.settings, chord_send_ms=SHORT_MS)
    start(b)
    b.enqueue(Q, [member("m0", 0)])  # the sender stopped before m1, and never armed it
    s.elapse(SHORT_MS)
    report = await b.maintain(Q, "w1", LONG_MS)
    assert report is not None, "the pass should run"
    assert report.chords_failed == 1, f"one chord should fail, not {report.chords_failed}"
    error = error_of(b, CHORD)
    assert error["type"] == _FAILED, f"the chord's error: {error}"
    assert "not all sent" in error["message"], f"it should say not all sent: {error}"


async def check_an_armed_chord_waits_for_its_members_until_the_dead_letter_age(
    s: Subject,
) -> None:
    """An armed chord is not held to `chord_send_ms`; it fails at `dead_max_age_ms`."""
    b = s.broker
    b.settings = BrokerSettings(dead_max_age_ms=BRIEF_MS, chord_send_ms=SHORT_MS)
    start(b)
    b.enqueue(Q, [member("m0", 0), member("m1", 1)])
    assert b.chord_arm(Q, CHORD), "arming a started chord should answer True"
    s.elapse(SHORT_MS)  # past the sending deadline: armed, it is not held to it
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None, "the pass should run"
    assert report.chords_failed == 0, f"an armed chord failed at {SHORT_MS} ms: {report}"
    s.elapse(BRIEF_MS)
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None, "the pass after the lock expired should run"
    assert report.chords_failed == 1, f"past the dead-letter age it should fail: {report}"
    message = error_of(b, CHORD)["message"]
    assert "did not all report" in message, f"it should say did not all report: {message!r}"


CHECKS: tuple[Check, ...] = (
    check_an_armed_chord_calls_back_when_every_member_reported,
    check_a_member_that_fails_for_good_fails_its_chord_naming_it,
    check_a_member_that_stalls_to_death_fails_its_chord,
    check_a_purged_member_still_fails_its_chord,
    check_redriving_a_dead_member_runs_it_alone_and_its_chord_stays_failed,
    check_a_chord_whose_members_were_not_all_sent_in_time_fails,
    check_an_armed_chord_waits_for_its_members_until_the_dead_letter_age,
)
