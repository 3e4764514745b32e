"""What the checks send and read: jobs, the outcomes a worker acks them with, fetching.

Outcomes are compared as decoded JSON, since a broker may encode maps in any key order (Lua
does).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from errands.broker.base import Broker
from errands.broker.types import AckCode, CancelCode, Delivery, JobSnapshot, NewJob, Outcome
from errands.conformance.subject import LONG_MS

__all__ = [
    "Q",
    "asked_to_stop",
    "defer",
    "fail",
    "ids",
    "job",
    "kill",
    "ok",
    "outcome_of",
    "record",
    "retry",
    "take",
    "take_one",
]

Q = "conformance"


def job(job_id: str, **options: Any) -> NewJob:
    """A job whose payload names it, with `options` as in `NewJob`."""
    return NewJob(id=job_id, payload=f"payload of {job_id}".encode(), **options)


def record(state: str, **fields: Any) -> bytes:
    """An outcome record as a worker writes it: JSON with its state and `fields`."""
    return msgspec.json.encode({"state": state, **fields})


def ok(d: Delivery, result: Any = None) -> Outcome:
    """The outcome of a run of `d` that returned `result`."""
    return Outcome(
        d.id, d.token, "succeeded", record("succeeded", result=result, attempts=d.attempt)
    )


def retry(d: Delivery, delay_ms: int = 0) -> Outcome:
    """The outcome of a run of `d` that failed and asks for another attempt in `delay_ms`."""
    error = {"type": "ValueError", "message": "try again"}
    outcome = record("failed", error=error, attempts=d.attempt)
    return Outcome(d.id, d.token, "retrying", outcome, retry_delay_ms=delay_ms)


def defer(d: Delivery, delay_ms: int = 0) -> Outcome:
    """The outcome a worker sends for a job of a task it does not know (yet)."""
    return Outcome(d.id, d.token, "deferred", record("deferred"), retry_delay_ms=delay_ms)


def fail(d: Delivery) -> Outcome:
    """The outcome of a run of `d` that failed for good, attempts left or not."""
    error = {"type": "KeyError", "message": "for good"}
    return Outcome(d.id, d.token, "failed", record("failed", error=error, attempts=d.attempt))


def outcome_of(state: JobSnapshot) -> dict[str, Any]:
    """The decoded outcome record of a finished job."""
    assert state.outcome is not None, f"a finished job should have an outcome record: {state}"
    decoded: dict[str, Any] = json.loads(state.outcome)
    return decoded


async def take(
    b: Broker, n: int = 1, *, lease_ms: int = LONG_MS, worker: str = "w1", queue: str = Q
) -> list[Delivery]:
    """Fetch up to `n` jobs of `queue`."""
    return (await b.fetch(queue, n, lease_ms, worker)).jobs


async def take_one(b: Broker, *, lease_ms: int = LONG_MS, worker: str = "w1") -> Delivery:
    """Fetch the one job the check expects to be ready."""
    jobs = await take(b, lease_ms=lease_ms, worker=worker)
    assert len(jobs) == 1, f"a fetch of one job should hand out the ready one, not {jobs}"
    return jobs[0]


async def ids(b: Broker, n: int = 10, **kw: Any) -> list[str]:
    """The ids of up to `n` jobs fetched, in the order the broker handed them out."""
    return [d.id for d in await take(b, n, **kw)]


async def kill(b: Broker, job_id: str) -> None:
    """Enqueue `job_id` with one attempt and fail it, so it lands in the dead set."""
    b.enqueue(Q, [job(job_id, max_attempts=1)])
    d = await take_one(b)
    codes = await b.ack(Q, [fail(d)])
    assert codes == [AckCode.DEAD], f"a failed job with no attempts left should die: {codes}"


async def asked_to_stop(b: Broker, *, lease_ms: int = LONG_MS) -> Delivery:
    """Enqueue and lease the job "a", then cancel it: it runs, asked to stop."""
    b.enqueue(Q, [job("a")])
    d = await take_one(b, lease_ms=lease_ms)
    code = b.cancel(Q, "a")
    assert code == CancelCode.REQUESTED, f"cancel of an active job answered {code!r}"
    return d
