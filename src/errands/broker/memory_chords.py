"""The chords of one in-memory queue: chord.lua, and the chord parts of 00_shared and maintain.lua.

A chord is recorded with a deadline to have its members sent by, armed when they all were, and
failed by maintenance when its deadline passes (not armed in time, or armed but not complete by
the dead-letter age). A member that ends dead leaves a note in its own queue (`notes`); the
broker turns notes into aborts of their chords, as workers do on Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from errands.broker.memory_outcomes import failed_outcome
from errands.broker.types import Enqueued, NewJob
from errands.broker.zset import ZSet

__all__ = ["Chords"]


@dataclass(slots=True)
class _Chord:
    remaining: int
    size: int
    callback: NewJob
    placeholder: bytes
    armed: bool = False


class Chords:
    """Chord records, their members' results, deadlines and the notes of dead members.

    Args:
        enqueue: the queue's enqueue (the last member enqueues the callback).
        store: stores a chord callback's failed outcome (id, outcome, result ttl ms, ignored).
    """

    def __init__(
        self,
        enqueue: Callable[[int, Sequence[NewJob]], list[Enqueued]],
        store: Callable[[str, bytes, int, bool, int], None],
    ) -> None:
        self._enqueue = enqueue
        self._store = store
        self.records: dict[str, _Chord] = {}
        self.parts: dict[tuple[str, int], bytes] = {}
        self.deadlines = ZSet()
        # member id -> (chord id, the chord's queue, the chord's failed outcome)
        self.notes: dict[str, tuple[str, str, bytes]] = {}

    def start(
        self,
        now: int,
        chord_id: str,
        size: int,
        callback: NewJob,
        placeholder: bytes,
        send_within_ms: int,
    ) -> bool:
        """errands_v1_chord_start: record a chord; False when already known."""
        if chord_id in self.records:
            return False
        self.records[chord_id] = _Chord(size, size, callback, placeholder)
        self.deadlines.add(chord_id, now + send_within_ms)
        return True

    def arm(self, now: int, chord_id: str, expires_in_ms: int) -> bool:
        """errands_v1_chord_arm: every member was sent; it may wait `expires_in_ms` for them."""
        chord = self.records.get(chord_id)
        if chord is None:
            return False
        chord.armed = True
        self.deadlines.add(chord_id, now + expires_in_ms)
        return True

    def _drop(self, chord_id: str) -> _Chord | None:
        chord = self.records.pop(chord_id, None)
        self.deadlines.discard(chord_id)
        if chord is not None:
            for index in range(chord.size):
                self.parts.pop((chord_id, index), None)
        return chord

    def part(self, now: int, chord_id: str, index: int, result: bytes) -> int:
        """errands_v1_chord_part: count a member; the last enqueues the callback."""
        chord = self.records.get(chord_id)
        if chord is None:
            return 0
        if (chord_id, index) in self.parts:
            return 1
        self.parts[(chord_id, index)] = result
        chord.remaining -= 1
        if chord.remaining > 0:
            return 2
        results = [self.parts.get((chord_id, i), b"null") for i in range(chord.size)]
        self._drop(chord_id)
        payload = chord.callback.payload.replace(
            chord.placeholder, b"[" + b",".join(results) + b"]", 1
        )
        callback = msgspec.structs.replace(chord.callback, id=chord_id, payload=payload, delay_ms=0)
        self._enqueue(now, [callback])
        return 3

    def abort(self, now: int, chord_id: str, outcome: bytes) -> bool:
        """errands_v1_chord_abort: fail the chord's callback with `outcome`."""
        chord = self._drop(chord_id)
        if chord is None:
            return False
        callback = chord.callback
        self._store(chord_id, outcome, callback.result_ttl_ms, callback.ignore_result, now)
        return True

    def expire(self, now: int, limit: int) -> int:
        """maintain.lua: fail the chords whose deadline passed; returns how many."""
        expired = self.deadlines.pop_min(limit, now)
        for chord_id in expired:
            chord = self.records[chord_id]
            why = (
                "its members did not all report before it expired (a member was lost?)"
                if chord.armed
                else "its members were not all sent (the sender stopped halfway?)"
            )
            message = f"the chord will not call back: {why}"
            self.abort(now, chord_id, failed_outcome("ChordFailed", message, 0, now))
        return len(expired)

    def take_notes(self, limit: int) -> dict[str, tuple[str, str, bytes]]:
        """Up to `limit` notes of dead members, removed (the broker delivers them at once)."""
        taken = dict(list(self.notes.items())[:limit])
        for member in taken:
            del self.notes[member]
        return taken
