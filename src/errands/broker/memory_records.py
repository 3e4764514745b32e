"""Records the memory broker writes as the Lua library does: worker entries, attempt history.

``heartbeat.lua`` stamps a worker's entry with the server's time and the jobs it holds;
``note_attempt`` in ``00_shared.lua`` keeps the last failed attempts of a job. These build the
same JSON, so both brokers read back alike (`errands.broker.reading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from errands.broker.views import HISTORY, HISTORY_TRACEBACK

__all__ = ["DEAD_MESSAGE", "note_attempt", "outcome_error", "seen_ms", "stamped", "worker_live"]

#: Characters of a dead job's error message kept for dead pages (DEAD_MESSAGE in Lua).
DEAD_MESSAGE = 300


def seen_ms(worker_info: bytes) -> float:
    """The ``seen`` field of a worker's info, as maintain.lua reads it (0 when unreadable)."""
    try:
        info = msgspec.json.decode(worker_info)
    except msgspec.DecodeError:
        return 0.0
    seen = info.get("seen") if isinstance(info, dict) else None
    if isinstance(seen, bool) or not isinstance(seen, (int, float, str)):
        return 0.0
    try:
        return float(seen)
    except ValueError:
        return 0.0


def _number(info: Any, field: str) -> float | None:
    value = info.get(field) if isinstance(info, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def worker_live(worker_info: bytes, now: int, silence_ms: int) -> bool:
    """worker_live in 00_shared.lua: heard from within its lease (else within `silence_ms`)."""
    try:
        info = msgspec.json.decode(worker_info)
    except msgspec.DecodeError:
        return False
    if not isinstance(info, dict):
        return False
    window = _number(info, "lease")
    return (_number(info, "seen") or 0.0) >= now - (silence_ms if window is None else window)


def stamped(worker_info: bytes, now: int, holding: Sequence[str]) -> bytes:
    """The worker's info with ``seen`` (the broker's time) and ``holding``, as heartbeat.lua."""
    try:
        info = msgspec.json.decode(worker_info)
    except msgspec.DecodeError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    info["seen"] = now
    info.pop("holding", None)
    if holding:
        info["holding"] = list(holding)
    return msgspec.json.encode(info)


def outcome_error(outcome: bytes | None) -> dict[str, Any] | None:
    """The error of an outcome JSON, or None (outcome_error in Lua)."""
    try:
        decoded = msgspec.json.decode(outcome or b"")
    except msgspec.DecodeError:
        return None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else None


def note_attempt(
    history: bytes | None, attempt: int, worker: str | None, error: dict[str, Any] | None, now: int
) -> bytes:
    """`history` with one more failed attempt, the last `HISTORY` kept (note_attempt in Lua)."""
    try:
        steps = msgspec.json.decode(history) if history else []
    except msgspec.DecodeError:
        steps = []
    if not isinstance(steps, list):
        steps = []
    error = dict(error) if error else {"type": "unknown", "message": "no error was recorded"}
    traceback = error.get("traceback")
    if isinstance(traceback, str) and len(traceback) > HISTORY_TRACEBACK:
        error["traceback"] = traceback[-HISTORY_TRACEBACK:]
    step: dict[str, Any] = {"a": attempt, "t": now, "e": error}
    if worker is not None:
        step["w"] = worker
    return msgspec.json.encode([*steps, step][-HISTORY:])
