"""Failing the chords of dead members: the notes ``chord_fails`` holds, turned into aborts.

A chord member that ends dead leaves a note in its own queue (the chord may live in another
queue, so the function that killed it cannot fail the chord itself: one call, one slot). A
worker reads the notes, aborts each chord in its queue, then drops the notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from errands.broker.redis import calls
from errands.broker.redis.plans import Command, Plan

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["deliver_chord_failures"]

# Notes read at a time, and rounds per call: more wait for the next call (maintenance comes
# back every few seconds), so one call stays short.
_NOTES = 100
_ROUNDS = 10


def _notes(raw: Any) -> dict[bytes, tuple[str, str, bytes] | None]:
    """HRANDFIELD ... WITHVALUES, decoded: member id -> (chord, its queue, failed outcome).

    A note that does not decode (None) is dropped with the rest: it names no chord to fail.
    """
    pairs: list[Any] = list(raw or [])
    if pairs and not isinstance(pairs[0], list | tuple):  # RESP2: a flat field/value list
        pairs = [pairs[i : i + 2] for i in range(0, len(pairs), 2)]
    notes: dict[bytes, tuple[str, str, bytes] | None] = {}
    for member, value in pairs:
        try:
            note = msgspec.msgpack.decode(value)
            notes[member] = (str(note["c"]), str(note["q"]), str(note["o"]).encode())
        except (msgspec.DecodeError, KeyError, TypeError):
            notes[member] = None
    return notes


def deliver_chord_failures(broker: RedisBroker, queue: str) -> Plan[int]:
    """Abort the chord of every note of `queue`, then drop the notes; returns how many.

    Aborting a chord twice changes nothing, so a step sent again (or a note read by two
    workers at once) is harmless; a note is dropped only once its abort was answered.
    """
    notes_key = broker.keys(queue).prefix + "chord_fails"
    read = Command(("HRANDFIELD", notes_key, _NOTES, "WITHVALUES"), _notes, "read chord notes")
    delivered = 0
    for _ in range(_ROUNDS):
        [notes] = yield [read]
        if not notes:
            break
        aborts = [
            calls.chord_abort(broker.keys(chord_queue), chord, outcome)
            for chord, chord_queue, outcome in filter(None, notes.values())
        ]
        if aborts:
            yield aborts
        yield [Command(("HDEL", notes_key, *notes), int, "drop chord notes")]
        delivered += len(notes)
    return delivered
