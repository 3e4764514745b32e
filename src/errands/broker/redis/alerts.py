"""`RedisAlertStore`: the alert evaluator's lease and incidents, over ``lua/alerts.lua``.

Its keys share one hash tag, ``<namespace>:{alerts:incidents}:...`` (a tag no queue can have:
queue names have no colon), so each function touches one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from errands.broker.redis.calls import Arg, Call
from errands.broker.redis.library import function_name
from errands.broker.redis.plans import Command, Plan
from errands.broker.redis.schedules import _pairs

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["ALERT_SUFFIXES", "RedisAlertStore", "alert_keys"]

#: The evaluator's keys, in the KEYS order of lua/alerts.lua.
ALERT_SUFFIXES = ("leader", "fence", "incidents")


def alert_keys(namespace: str) -> tuple[str, ...]:
    """Every key of the alert evaluator of `namespace`, in KEYS order."""
    return tuple(f"{namespace}:{{alerts:incidents}}:{suffix}" for suffix in ALERT_SUFFIXES)


class RedisAlertStore:
    """`errands.observe.alerts.AlertStore` on Redis.

    Args:
        broker: the broker whose connections and namespace it uses.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._keys = alert_keys(broker.namespace)

    def _call(self, operation: str, args: tuple[Arg, ...]) -> Call[Any]:
        return Call(function_name(operation), self._keys, args, lambda reply: reply)

    async def lead(self, owner: str, lease_ms: int) -> int:
        """Take or renew the lease; the fence of `owner`'s leadership, or 0 (another leads)."""
        reply = await self._broker.arun(self._call("alerts_lead", (owner, lease_ms)))
        return int(reply[0])

    async def resign(self, owner: str, fence: int) -> bool:
        """Give the lease up if `owner` still holds it under `fence`."""
        return bool(await self._broker.arun(self._call("alerts_resign", (owner, fence))))

    async def save(self, owner: str, fence: int, changes: Sequence[tuple[str, bytes]]) -> bool:
        """Store records (key, JSON; b"" deletes) if `fence` leads; False: nothing stored."""
        args: list[Arg] = [owner, fence, len(changes)]
        for key, record in changes:
            args += (key, record)
        return bool(await self._broker.arun(self._call("alerts_save", tuple(args))))

    def _read_plan(self) -> Plan[dict[str, bytes]]:
        (records,) = yield [Command(("HGETALL", self._keys[2]), _pairs, "read incidents")]
        found: dict[str, bytes] = records
        return found

    async def read(self) -> dict[str, bytes]:
        """Every incident record, by key."""
        return await self._broker.arun_plan(self._read_plan())
