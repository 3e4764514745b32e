"""`RedisSchedules`: the `ScheduleStore` on Redis, over the functions of ``lua/schedule.lua``.

Its keys share one hash tag, ``<namespace>:{beat:schedules}:...`` (a tag no queue can have: queue
names have no colon), so each function touches one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from errands.broker.beat import BeatSnapshot, Origin, PauseChange
from errands.broker.redis.calls import Arg, Call
from errands.broker.redis.library import function_name
from errands.broker.redis.plans import Command, Plan

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["BEAT_SUFFIXES", "RedisSchedules", "beat_keys"]

#: The scheduler's keys, in the KEYS order of lua/schedule.lua.
BEAT_SUFFIXES = ("leader", "fence", "defs", "state", "pauses", "version")


def beat_keys(namespace: str) -> tuple[str, ...]:
    """Every key of the scheduler of `namespace`, in KEYS order."""
    return tuple(f"{namespace}:{{beat:schedules}}:{suffix}" for suffix in BEAT_SUFFIXES)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(reply: Any) -> int:
    return int(reply)


def _pairs(reply: list[Any] | dict[Any, bytes]) -> dict[str, bytes]:
    """A hash as HGETALL gives it: a map (RESP3) or a flat field/value list (RESP2)."""
    if isinstance(reply, dict):
        return {_text(field): value for field, value in reply.items()}
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


class RedisSchedules:
    """`errands.broker.beat.ScheduleStore` on Redis (``RedisBroker.schedules``).

    Args:
        broker: the broker whose connections and namespace it uses.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._keys = beat_keys(broker.namespace)

    def _call(self, operation: str, args: tuple[Arg, ...], parse: Any) -> Call[Any]:
        return Call(function_name(operation), self._keys, args, parse)

    # The leader lease ------------------------------------------------------------------------

    async def lead(self, owner: str, lease_ms: int) -> tuple[int, int]:
        """See `ScheduleStore.lead`."""
        call = self._call("beat_lead", (owner, lease_ms), lambda r: (int(r[0]), int(r[1])))
        answer: tuple[int, int] = await self._broker.arun(call)
        return answer

    async def resign(self, owner: str, fence: int) -> bool:
        """See `ScheduleStore.resign`."""
        return bool(await self._broker.arun(self._call("beat_resign", (owner, fence), _int)))

    async def advance(self, owner: str, fence: int, states: Sequence[tuple[str, bytes]]) -> bool:
        """See `ScheduleStore.advance`."""
        args: list[Arg] = [owner, fence, len(states)]
        for schedule_id, state in states:
            args += (schedule_id, state)
        return bool(await self._broker.arun(self._call("beat_advance", tuple(args), _int)))

    async def aversion(self) -> int:
        """See `ScheduleStore.aversion`."""
        return int(await self._broker.arun_plan(self._version_plan()) or 0)

    def _version_plan(self) -> Plan[int]:
        (version,) = yield [Command(("GET", self._keys[5]), lambda r: int(r or 0), "version")]
        return int(version)

    # Definitions and pauses -------------------------------------------------------------------

    def _read_plan(self) -> Plan[BeatSnapshot]:
        _, _, defs, state, pauses, version = self._keys
        replies = yield [
            Command(("HGETALL", defs), _pairs, "read schedules"),
            Command(("HGETALL", state), _pairs, "read schedules"),
            Command(("HGETALL", pauses), _pairs, "read schedules"),
            Command(("GET", version), lambda r: int(r or 0), "read schedules"),
        ]
        return BeatSnapshot(*replies)

    def read(self) -> BeatSnapshot:
        """See `ScheduleStore.read`."""
        return self._broker.run_plan(self._read_plan())

    async def aread(self) -> BeatSnapshot:
        """See `ScheduleStore.aread`."""
        return await self._broker.arun_plan(self._read_plan())

    def _define(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> Call[list[str]]:
        args: list[Arg] = [origin, len(defs)]
        for schedule_id, definition in defs:
            args += (schedule_id, definition)
        return self._call("beat_define", tuple(args), lambda r: [_text(a) for a in r])

    def define(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> list[str]:
        """See `ScheduleStore.define`."""
        answer: list[str] = self._broker.run(self._define(origin, defs))
        return answer

    async def adefine(self, origin: Origin, defs: Sequence[tuple[str, bytes]]) -> list[str]:
        """See `ScheduleStore.adefine`."""
        answer: list[str] = await self._broker.arun(self._define(origin, defs))
        return answer

    def _remove(self, ids: Sequence[str], only: Origin | None) -> Call[int]:
        return self._call("beat_remove", (only or "", len(ids), *ids), _int)

    def remove(self, ids: Sequence[str], only: Origin | None = None) -> int:
        """See `ScheduleStore.remove`."""
        removed: int = self._broker.run(self._remove(ids, only))
        return removed

    async def aremove(self, ids: Sequence[str], only: Origin | None = None) -> int:
        """See `ScheduleStore.aremove`."""
        removed: int = await self._broker.arun(self._remove(ids, only))
        return removed

    def _pause(self, schedule_id: str, change: PauseChange, note: str) -> Call[int]:
        return self._call("beat_pause", (schedule_id, change, note), _int)

    def pause(self, schedule_id: str, change: PauseChange, note: str = "") -> bool:
        """See `ScheduleStore.pause`."""
        changed: int = self._broker.run(self._pause(schedule_id, change, note))
        return bool(changed)

    async def apause(self, schedule_id: str, change: PauseChange, note: str = "") -> bool:
        """See `ScheduleStore.apause`."""
        changed: int = await self._broker.arun(self._pause(schedule_id, change, note))
        return bool(changed)
