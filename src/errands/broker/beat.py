"""`ScheduleStore`: where schedules live, and the lease that makes one scheduler their leader.

Any number of schedulers may run; one leads. The lease is taken and renewed in one atomic step
that checks its holder (never a blind expiry), and every new leadership gets a new *fence*: the
leader writes fire state only under its fence, so a scheduler that lost the lease (paused,
partitioned) and comes back writes nothing. Fires themselves are jobs with ids derived from the
schedule and the nominal time, so a fire sent twice (two leaders overlapping for a moment, a
fire replayed after a takeover) is enqueued once.

Definitions, fire state and pauses are opaque JSON here (`errands.schedule.records` reads them):
the store keeps them, the scheduler gives them meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec

__all__ = ["BeatSnapshot", "Origin", "PauseChange", "ScheduleStore"]

#: Who made a schedule: code (``@app.periodic``, reconciled when a scheduler starts) or an
#: operator (``app.schedules.upsert``: code never replaces it).
Origin = Literal["code", "operator"]
#: How a pause changes: pause, resume from the last fire (catch up), or resume from now.
PauseChange = Literal["pause", "resume_last", "resume_now"]


class BeatSnapshot(msgspec.Struct, frozen=True):
    """Every schedule at one instant: definitions, fire state, pauses, and their version.

    Attributes:
        defs: schedule id -> definition JSON.
        state: schedule id -> fire state JSON (written by the leader).
        pauses: schedule id -> pause JSON (written by operators).
        version: bumped by every change of `defs` or `pauses`.
    """

    defs: dict[str, bytes]
    state: dict[str, bytes]
    pauses: dict[str, bytes]
    version: int


class ScheduleStore(Protocol):
    """The schedules of an app and the scheduler's leader lease (``broker.schedules``)."""

    # The leader lease (the scheduler's loop: async only).
    async def lead(self, owner: str, lease_ms: int) -> tuple[int, int]:
        """Take the lease, or renew it if `owner` holds it.

        Returns:
            (fence, ms left): the fence of `owner`'s leadership, or 0 when another owner holds
            the lease, whose ms left are then given.
        """
        ...

    async def resign(self, owner: str, fence: int) -> bool:
        """Give the lease up if `owner` still holds it under `fence`."""
        ...

    async def advance(self, owner: str, fence: int, states: Sequence[tuple[str, bytes]]) -> bool:
        """Store fire states (schedule id, JSON) if `fence` still leads; False: nothing stored."""
        ...

    async def aversion(self) -> int:
        """The version of the definitions and pauses (cheap: the leader polls it)."""
        ...

    # Definitions and pauses: blocking calls and their async twins.
    def read(self) -> BeatSnapshot:
        """Every schedule, its state and its pause, read at one instant."""
        ...

    async def aread(self) -> BeatSnapshot:
        """Async twin of `read`."""
        ...

    def define(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> list[str]:
        """Add or replace schedules; per schedule 'created', 'replaced', 'same' or 'kept'.

        Code (`origin` 'code') never replaces a schedule an operator made ('kept').
        """
        ...

    async def adefine(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> list[str]:
        """Async twin of `define`."""
        ...

    def remove(self, ids: Sequence[str], only: Origin | None = None) -> int:
        """Delete schedules (those of origin `only`, if given) with their state; how many."""
        ...

    async def aremove(self, ids: Sequence[str], only: Origin | None = None) -> int:
        """Async twin of `remove`."""
        ...

    def pause(self, schedule_id: str, change: PauseChange, note: str = "") -> bool:
        """Pause or resume a schedule; False when there is no such schedule."""
        ...

    async def apause(self, schedule_id: str, change: PauseChange, note: str = "") -> bool:
        """Async twin of `pause`."""
        ...
