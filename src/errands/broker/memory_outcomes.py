"""The outcome records the Lua library writes by itself, built the same way for the memory broker.

Failed outcomes of jobs nobody ran to the end (stalled, cancelled, corrupt) and of chords that
will not call back: the JSON of ``failed_outcome`` and ``chord_failure`` in 00_shared.lua.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["cancelled_outcome", "chord_failure", "failed_outcome", "stalled_outcome"]


def failed_outcome(
    kind: str, message: str, attempts: int, now: int, deliveries: int | None = None
) -> bytes:
    """A failed outcome with error type ``errands.errors.<kind>`` (failed_outcome in Lua)."""
    record: dict[str, Any] = {
        "state": "failed",
        "attempts": attempts,
        "finished_at": now / 1000,
        "error": {"type": f"errands.errors.{kind}", "message": message},
    }
    if deliveries is not None:
        record["deliveries"] = deliveries
    return msgspec.json.encode(record)


def cancelled_outcome(attempts: int) -> bytes:
    """The outcome of a job cancelled before it finished."""
    return msgspec.json.encode({"state": "cancelled", "attempts": attempts})


def stalled_outcome(
    stalls: int, lost: int, max_stalls: int, attempts: int, deliveries: int, now: int
) -> bytes:
    """The outcome of a job whose leases expired too often (stalled_outcome in Lua)."""
    message = (
        f"the lease of this job expired {stalls} times while it ran, and {lost} times before it "
        f"was seen running (max_stalls={max_stalls}): a worker holding it died or lost Redis "
        "each time; it may be killing workers"
    )
    return failed_outcome("JobStalled", message, attempts, now, deliveries)


def chord_failure(chord: str, member: str, outcome: bytes, now: int) -> bytes:
    """The outcome of a chord whose member ended dead with `outcome` (chord_failure in Lua)."""
    try:
        decoded = msgspec.json.decode(outcome)
    except msgspec.DecodeError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    error = error if isinstance(error, dict) else {}
    cause = f"{error.get('type', 'unknown')}: {error.get('message', 'no error recorded')}"
    failure: dict[str, Any] = {
        "type": "errands.errors.ChordFailed",
        "message": f"chord {chord} will not call back: member {member} failed with {cause}",
    }
    if isinstance(error.get("traceback"), str):
        failure["traceback"] = error["traceback"]
    return msgspec.json.encode({"state": "failed", "finished_at": now / 1000, "error": failure})
