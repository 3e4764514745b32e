"""The supervisor's bell: a ring is never lost, and a cleared bell lets the loop sleep."""

from __future__ import annotations

import asyncio

from errands.worker.bell import Bell


async def test_a_ring_wakes_the_waiter() -> None:
    bell = Bell()
    waiter = bell.waiter()
    assert not waiter.done()
    asyncio.get_running_loop().call_soon(bell.set)
    await asyncio.wait_for(waiter, timeout=1)


async def test_a_ring_before_the_wait_is_not_lost() -> None:
    bell = Bell()
    bell.set()
    assert bell.waiter().done()


async def test_a_cleared_bell_waits_for_the_next_ring() -> None:
    bell = Bell()
    bell.set()
    bell.clear()
    assert not bell.is_set()
    waiter = bell.waiter()
    assert not waiter.done()
    bell.set()
    assert waiter.done()
    assert bell.is_set()
