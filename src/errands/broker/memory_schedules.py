"""`MemorySchedules`: the `ScheduleStore` in memory, as lua/schedule.lua does it on Redis.

Time is the memory broker's clock (a `ManualClock` in tests), so a lease expires when a test
moves the clock past it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence

from errands.broker.beat import BeatSnapshot, Origin, PauseChange

__all__ = ["MemorySchedules"]


def _origin(definition: bytes) -> str:
    """The origin of a stored definition ('code' when it cannot be read)."""
    try:
        decoded = json.loads(definition)
    except ValueError:
        return "code"
    return (
        "operator" if isinstance(decoded, dict) and decoded.get("origin") == "operator" else "code"
    )


class MemorySchedules:
    """`errands.broker.beat.ScheduleStore` in memory (``MemoryBroker.schedules``).

    Args:
        now_ms: the broker's clock, in ms.
    """

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._leader: tuple[str, int, int] | None = None  # owner, fence, expires at (ms)
        self._fence = 0
        self._defs: dict[str, bytes] = {}
        self._state: dict[str, bytes] = {}
        self._pauses: dict[str, bytes] = {}
        self._version = 0

    def _holder(self) -> tuple[str, int, int] | None:
        if self._leader is not None and self._leader[2] <= self._now_ms():
            self._leader = None
        return self._leader

    # The leader lease ------------------------------------------------------------------------

    async def lead(self, owner: str, lease_ms: int) -> tuple[int, int]:
        """See `ScheduleStore.lead`."""
        with self._lock:
            now = self._now_ms()
            held = self._holder()
            if held is not None and held[0] != owner:
                return 0, held[2] - now
            if held is None:
                self._fence += 1
                held = (owner, self._fence, 0)
            self._leader = (owner, held[1], now + lease_ms)
            return held[1], lease_ms

    async def resign(self, owner: str, fence: int) -> bool:
        """See `ScheduleStore.resign`."""
        with self._lock:
            held = self._holder()
            if held is not None and held[:2] == (owner, fence):
                self._leader = None
                return True
            return False

    async def advance(self, owner: str, fence: int, states: Sequence[tuple[str, bytes]]) -> bool:
        """See `ScheduleStore.advance`."""
        with self._lock:
            held = self._holder()
            if held is None or held[:2] != (owner, fence):
                return False
            self._state.update(states)
            return True

    async def aversion(self) -> int:
        """See `ScheduleStore.aversion`."""
        return self._version

    # Definitions and pauses -------------------------------------------------------------------

    def read(self) -> BeatSnapshot:
        """See `ScheduleStore.read`."""
        with self._lock:
            return BeatSnapshot(
                dict(self._defs), dict(self._state), dict(self._pauses), self._version
            )

    async def aread(self) -> BeatSnapshot:
        """See `ScheduleStore.aread`."""
        return self.read()

    def define(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> list[str]:
        """See `ScheduleStore.define`."""
        answers: list[str] = []
        with self._lock:
            for schedule_id, definition in defs:
                stored = self._defs.get(schedule_id)
                if stored is None:
                    answer = "created"
                elif stored == definition:
                    answer = "same"
                elif origin == "code" and _origin(stored) == "operator":
                    answer = "kept"
                else:
                    answer = "replaced"
                if answer in ("created", "replaced"):
                    self._defs[schedule_id] = definition
                answers.append(answer)
            if {"created", "replaced"} & set(answers):
                self._version += 1
        return answers

    async def adefine(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> list[str]:
        """See `ScheduleStore.adefine`."""
        return self.define(origin, defs)

    def remove(self, ids: Sequence[str], only: Origin | None = None) -> int:
        """See `ScheduleStore.remove`."""
        removed = 0
        with self._lock:
            for schedule_id in ids:
                stored = self._defs.get(schedule_id)
                if stored is not None and (only is None or _origin(stored) == only):
                    del self._defs[schedule_id]
                    self._state.pop(schedule_id, None)
                    self._pauses.pop(schedule_id, None)
                    removed += 1
            if removed:
                self._version += 1
        return removed

    async def aremove(self, ids: Sequence[str], only: Origin | None = None) -> int:
        """See `ScheduleStore.aremove`."""
        return self.remove(ids, only)

    def pause(self, schedule_id: str, change: PauseChange, note: str = "") -> bool:
        """See `ScheduleStore.pause`."""
        with self._lock:
            if schedule_id not in self._defs:
                return False
            now = self._now_ms()
            if change == "pause":
                entry = {"paused": True, "note": note, "at": now}
                self._pauses[schedule_id] = json.dumps(entry).encode()
            elif change == "resume_now":
                self._pauses[schedule_id] = json.dumps({"paused": False, "from": now}).encode()
            else:
                self._pauses.pop(schedule_id, None)
            self._version += 1
            return True

    async def apause(self, schedule_id: str, change: PauseChange, note: str = "") -> bool:
        """See `ScheduleStore.apause`."""
        return self.pause(schedule_id, change, note)
