"""One broker, several event loops: each loop keeps connections of its own, opened once.

The in-process pools run async tasks on a loop of their own, beside the supervisor's: a task
that enqueues (``await task.adelay()``) and the supervisor share the app's broker. Connections
belong to the loop that opened them, so the broker keeps a set per loop instead of replacing
one set whenever another loop calls.
"""

from __future__ import annotations

import asyncio

import redis

from errands.broker.redis import RedisBroker
from errands.broker.types import NewJob


def _connections_received(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


def test_two_loops_taking_turns_on_one_broker_open_their_connections_once(
    broker: RedisBroker, redis_url: str
) -> None:
    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        for loop in loops:  # each opens what it needs once
            loop.run_until_complete(broker.aenqueue("q", [NewJob(id="warm", payload=b"{}")]))
            loop.run_until_complete(broker.ajob_state("q", "warm"))
        before = _connections_received(redis_url)
        for turn in range(20):
            loop = loops[turn % 2]
            job = NewJob(id=f"j{turn}", payload=b"{}")
            loop.run_until_complete(broker.aenqueue("q", [job]))
            assert loop.run_until_complete(broker.ajob_state("q", job.id)).state == "queued"
        # Two for the counting client of this test; none for the broker.
        assert _connections_received(redis_url) - before <= 2
    finally:
        for loop in loops:
            loop.run_until_complete(broker.aclose())
            loop.close()
