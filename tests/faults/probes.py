"""What a fault test reads of a job's state in Redis, where no event tells it."""

from __future__ import annotations

import time

import msgspec
import redis

__all__ = ["wait_seen_running"]


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
