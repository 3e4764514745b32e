"""Chords on both brokers: they always end, with the callback's result or a failure saying why.

A member that ends dead, however (it failed, ran out of attempts, stalled), fails its chord:
its queue keeps a note, which `adeliver_chord_failures` turns into the chord's failure. A chord
whose members were not all sent in time, or did not all report before the dead-letter age,
fails in maintenance.
"""

from __future__ import annotations

import msgspec

from errands.broker.base import Broker, BrokerSettings
from errands.broker.types import AckCode, Lease, NewJob
from tests.integration.conformance import (
    BRIEF_MS,
    LONG_MS,
    SHORT_MS,
    Q,
    Subject,
    fail,
    ids,
    job,
    ok,
    outcome_of,
    take,
)

CHORD = "chord-1"
PLACEHOLDER = b'"__results__"'


def member(job_id: str, index: int, **options: object) -> NewJob:
    return job(job_id, chord=CHORD, chord_queue=Q, chord_index=index, **options)


def start(b: Broker, size: int = 2) -> None:
    callback = NewJob(id=CHORD, payload=b'{"args": ["__results__"]}')
    assert b.chord_start(Q, CHORD, size, callback, PLACEHOLDER)


def error_of(b: Broker, job_id: str) -> dict[str, str]:
    error: dict[str, str] = outcome_of(b.job_state(Q, job_id))["error"]
    return error


async def test_an_armed_chord_calls_back_when_every_member_reported(any_broker: Subject) -> None:
    b = any_broker.broker
    start(b)
    b.enqueue(Q, [member("m0", 0), member("m1", 1)])
    assert b.chord_arm(Q, CHORD)
    assert b.job_state(Q, CHORD).state == "waiting"
    assert await b.chord_part(Q, CHORD, 1, b"11") == 2
    assert await b.chord_part(Q, CHORD, 0, b"10") == 3
    [callback] = [d for d in await take(b, 5) if d.id == CHORD]
    assert callback.payload == b'{"args": [[10,11]]}'


async def test_a_member_that_fails_for_good_fails_its_chord_naming_it(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    start(b)
    b.enqueue(Q, [member("m0", 0, max_attempts=1), member("m1", 1)])
    b.chord_arm(Q, CHORD)
    [d, _] = await take(b, 2)
    assert await b.ack(Q, [fail(d)]) == [AckCode.DEAD]
    assert b.job_state(Q, CHORD).state == "waiting"  # until a worker delivers the note
    assert await b.adeliver_chord_failures(Q) == 1
    error = error_of(b, CHORD)
    assert error["type"] == "errands.errors.ChordFailed"
    assert "member m0 failed with KeyError: for good" in error["message"]
    assert await b.chord_part(Q, CHORD, 1, b"1") == 0  # the chord is over
    assert await b.adeliver_chord_failures(Q) == 0


async def test_a_member_that_stalls_to_death_fails_its_chord(any_broker: Subject) -> None:
    b = any_broker.broker
    start(b, size=1)
    b.enqueue(Q, [member("m0", 0, max_stalls=0)])
    b.chord_arm(Q, CHORD)
    [d] = await take(b, lease_ms=SHORT_MS)
    await b.heartbeat(Q, "w1", b"{}", [Lease(d.id, d.token)], SHORT_MS, {d.id})
    any_broker.elapse(SHORT_MS)
    assert await ids(b) == []  # reaped: dead, as its stall was one too many
    assert await b.adeliver_chord_failures(Q) == 1
    assert "member m0 failed with errands.errors.JobStalled" in error_of(b, CHORD)["message"]


async def test_a_purged_member_still_fails_its_chord(any_broker: Subject) -> None:
    b = any_broker.broker
    start(b, size=1)
    b.enqueue(Q, [member("m0", 0, max_attempts=1)])
    b.chord_arm(Q, CHORD)
    [d] = await take(b)
    await b.ack(Q, [fail(d)])
    assert b.purge(Q, ["m0"]) == 1
    assert await b.adeliver_chord_failures(Q) == 1
    assert error_of(b, CHORD)["type"] == "errands.errors.ChordFailed"


async def test_redriving_a_dead_member_runs_it_alone_and_its_chord_stays_failed(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    start(b)
    b.enqueue(Q, [member("m0", 0, max_attempts=1), member("m1", 1)])
    b.chord_arm(Q, CHORD)
    [d0, d1] = await take(b, 2)
    await b.ack(Q, [fail(d0)])
    assert await b.chord_part(Q, CHORD, 1, b"1") == 2
    await b.ack(Q, [ok(d1)])
    # Nobody delivered the note yet: the redrive does, before the member is back.
    assert b.redrive(Q, ["m0"]) == ["m0"]
    assert error_of(b, CHORD)["type"] == "errands.errors.ChordFailed"
    [again] = await take(b)
    assert await b.chord_part(Q, CHORD, 0, b"0") == 0  # no chord to count in
    assert await b.ack(Q, [ok(again, "alone")]) == [AckCode.SUCCEEDED]
    assert outcome_of(b.job_state(Q, "m0"))["result"] == "alone"
    assert b.job_state(Q, CHORD).state == "failed"


async def test_a_chord_whose_members_were_not_all_sent_in_time_fails(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.settings = msgspec.structs.replace(b.settings, chord_send_ms=SHORT_MS)
    start(b)
    b.enqueue(Q, [member("m0", 0)])  # the sender stopped before m1, and never armed it
    any_broker.elapse(SHORT_MS)
    report = await b.maintain(Q, "w1", LONG_MS)
    assert report is not None
    assert report.chords_failed == 1
    error = error_of(b, CHORD)
    assert error["type"] == "errands.errors.ChordFailed"
    assert "not all sent" in error["message"]


async def test_an_armed_chord_waits_for_its_members_until_the_dead_letter_age(
    any_broker: Subject,
) -> None:
    b = any_broker.broker
    b.settings = BrokerSettings(dead_max_age_ms=BRIEF_MS, chord_send_ms=SHORT_MS)
    start(b)
    b.enqueue(Q, [member("m0", 0), member("m1", 1)])
    assert b.chord_arm(Q, CHORD)
    any_broker.elapse(SHORT_MS)  # past the sending deadline: armed, it is not held to it
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None
    assert report.chords_failed == 0
    any_broker.elapse(BRIEF_MS)
    report = await b.maintain(Q, "w1", SHORT_MS)
    assert report is not None
    assert report.chords_failed == 1
    assert "did not all report" in error_of(b, CHORD)["message"]
