"""What a fault test reads of a job's state in Redis, where no event tells it, and how it
calls the broker's async API from a plain test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import msgspec
import redis

if TYPE_CHECKING:
    from errands import App

__all__ = ["run_on_own_loop", "wait_seen_running"]

T = TypeVar("T")


def run_on_own_loop(app: App, work: Awaitable[T]) -> T:
    """Run `work` on a loop of its own, then close the app's connections of that loop."""

    async def run() -> T:
        try:
            return await work
        finally:
            await app.broker.aclose()

    return asyncio.run(run())


def wait_seen_running(
    client: redis.Redis, namespace: str, job_id: str, queue: str = "default"
) -> None:
    """Return once a heartbeat has marked the job's lease started (its meta's ``r``).

    Only such a lease, if it expires, is a stall: a test that kills a worker to make one must
    wait for this first. The mark lives in Redis alone, so this polls, bounded by 10 s.
    """
    meta = f"{namespace}:{{{queue}}}:meta"
    deadline = time.monotonic() + 10
    while True:
        raw: bytes | None = client.hget(meta, job_id)  # type: ignore[assignment]
        if raw is not None and msgspec.msgpack.decode(raw).get("r") == 1:
            return
        assert time.monotonic() < deadline, f"no heartbeat saw job {job_id} running"
        time.sleep(0.05)
