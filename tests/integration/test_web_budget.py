"""The per-token budget of the HTTP API (``lua/budget.lua``) on real Redis."""

from __future__ import annotations

import asyncio

import redis

from errands import App
from errands.broker.redis import RedisBroker
from errands.broker.redis.budget import Spent, budget_key, spend


def _spend(app: App, key: str, cost: int, budget: int = 5) -> Spent:
    broker = app.broker
    assert isinstance(broker, RedisBroker)

    async def run() -> Spent:
        try:
            return await spend(broker, key, cost, budget, 60.0)
        finally:
            await broker.aclose()

    return asyncio.run(run())


def test_a_budget_is_spent_until_what_is_left_cannot_cover_a_cost(app: App) -> None:
    key = budget_key(app.namespace, "dead-retry", "tok1")
    first = _spend(app, key, 3)
    assert (first.granted, first.left) == (True, 2)
    assert 59 < first.resets_in_s <= 60
    refused = _spend(app, key, 3)
    assert (refused.granted, refused.left) == (False, 2), "refused whole, nothing spent"
    assert _spend(app, key, 2).granted
    assert not _spend(app, key, 1).granted
    other = _spend(app, budget_key(app.namespace, "dead-retry", "tok2"), 5)
    assert (other.granted, other.left) == (True, 0), "each caller has a budget of its own"


def test_an_overwritten_counter_starts_a_new_window(app: App, redis_url: str) -> None:
    key = budget_key(app.namespace, "dead-retry", "tok3")
    plain = redis.Redis.from_url(redis_url)
    try:
        plain.hset(key, "x", "1")
        assert _spend(app, key, 4).granted
        plain.set(key, "not a number")
        assert _spend(app, key, 5).left == 0
        plain.set(key, "4")  # no expiry: a window that would never end
        spent = _spend(app, key, 5)
        assert spent.granted, "a counter without a window starts one"
        assert 0 < plain.pttl(key) <= 60_000
    finally:
        plain.close()
