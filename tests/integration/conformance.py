"""What the broker conformance suites share: the two brokers, time, jobs and outcomes.

Every conformance test runs on both RedisBroker (real Redis, private namespace) and MemoryBroker
(the `any_broker` fixture of conftest.py). Where time must pass, `Subject.elapse` moves the
memory broker's clock and sleeps on Redis (leases and TTLs are tens of ms there). Outcomes are
compared as JSON, since Lua encodes maps in no fixed key order.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec

from errands.broker.base import Broker
from errands.broker.types import AckCode, Delivery, JobSnapshot, NewJob, Outcome

__all__ = [
    "BRIEF_MS",
    "LONG_MS",
    "SHORT_MS",
    "FakeClock",
    "Q",
    "Subject",
    "fail",
    "ids",
    "job",
    "kill",
    "ok",
    "outcome_of",
    "record",
    "retry",
    "take",
]

Q = "conformance"
SHORT_MS = 40  # a lease or TTL that a test lets expire, asserting nothing before it does
BRIEF_MS = 300  # a delay or TTL that must still hold for a few calls, then expire
LONG_MS = 60_000  # a lease or delay that must not expire during a test
_SLEEP_MARGIN_S = 0.015  # Redis's clock against ours: sleep a little past a deadline


class FakeClock:
    """A clock in seconds, like `time.time`, that only moves when told to."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms / 1000


class Subject:
    """A broker under test, and how to let its time pass."""

    def __init__(self, broker: Broker, clock: FakeClock | None) -> None:
        self.broker = broker
        self.clock = clock

    def elapse(self, ms: int) -> None:
        """Let `ms` pass as the broker sees it: move the fake clock, or sleep just past it."""
        if self.clock is not None:
            self.clock.advance(ms)
        else:
            time.sleep(ms / 1000 + _SLEEP_MARGIN_S)

    def now_ms(self) -> int:
        """The broker's time in ms."""
        return round((self.clock or time.time)() * 1000)


def job(job_id: str, **options: Any) -> NewJob:
    return NewJob(id=job_id, payload=f"payload of {job_id}".encode(), **options)


def record(state: str, **fields: Any) -> bytes:
    return msgspec.json.encode({"state": state, **fields})


def ok(d: Delivery, result: Any = None) -> Outcome:
    return Outcome(d.id, d.token, "ok", record("succeeded", result=result, attempts=d.attempt))


def retry(d: Delivery, delay_ms: int = 0) -> Outcome:
    error = {"type": "ValueError", "message": "try again"}
    outcome = record("failed", error=error, attempts=d.attempt)
    return Outcome(d.id, d.token, "retry", outcome, retry_delay_ms=delay_ms)


def defer(d: Delivery, delay_ms: int = 0) -> Outcome:
    """The outcome a worker sends for a job of a task it does not know (yet)."""
    return Outcome(d.id, d.token, "defer", record("deferred"), retry_delay_ms=delay_ms)


def fail(d: Delivery) -> Outcome:
    error = {"type": "KeyError", "message": "for good"}
    return Outcome(d.id, d.token, "fail", record("failed", error=error, attempts=d.attempt))


def outcome_of(state: JobSnapshot) -> dict[str, Any]:
    assert state.outcome is not None, f"no outcome in {state}"
    decoded: dict[str, Any] = json.loads(state.outcome)
    return decoded


async def take(
    b: Broker, n: int = 1, *, lease_ms: int = LONG_MS, worker: str = "w1", queue: str = Q
) -> list[Delivery]:
    return (await b.fetch(queue, n, lease_ms, worker)).jobs


async def ids(b: Broker, n: int = 10, **kw: Any) -> list[str]:
    return [d.id for d in await take(b, n, **kw)]


async def kill(b: Broker, job_id: str) -> None:
    """Enqueue `job_id` with one attempt and fail it, so it lands in the dead set."""
    b.enqueue(Q, [job(job_id, max_attempts=1)])
    [d] = await take(b)
    assert await b.ack(Q, [fail(d)]) == [AckCode.DEAD]
