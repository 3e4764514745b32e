"""A budget per caller and window on Redis (``lua/budget.lua``): spend it or be told to wait.

The HTTP API limits how many dead jobs one token retries per minute with it; every API
process of a namespace spends the same budget, in one atomic call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from errands.broker.redis.calls import Call
from errands.broker.redis.library import function_name

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["BUDGET_SUFFIXES", "Spent", "budget_key", "spend"]

#: The budget function's keys, in KEYS order.
BUDGET_SUFFIXES = ("spent",)


class Spent(msgspec.Struct, frozen=True):
    """What a spending did.

    Attributes:
        granted: the cost was spent; False when the window had less left (nothing spent).
        left: what is left of the window's budget.
        resets_in_s: seconds until the window ends and the budget is whole again.
    """

    granted: bool
    left: int
    resets_in_s: float


def budget_key(namespace: str, what: str, caller: str) -> str:
    """The counter of `caller`'s spending on `what` (``<ns>:{web}:budget:<what>:<caller>``)."""
    return f"{namespace}:{{web}}:budget:{what}:{caller}"


async def spend(broker: RedisBroker, key: str, cost: int, budget: int, window_s: float) -> Spent:
    """Spend `cost` of the `budget` per `window_s` kept under `key`, if that much is left."""

    def parse(reply: list[Any]) -> Spent:
        granted, left, ttl_ms = reply
        return Spent(int(granted) == 1, max(0, int(left)), int(ttl_ms) / 1000)

    args = (cost, budget, int(window_s * 1000))
    return await broker.arun(Call(function_name("budget_spend"), (key,), args, parse))
