"""Job progress: what a running task reports with `TaskContext.set_progress`, and its bounds.

A task says how far it got: a fraction (0.4 is 40 %), a message, a few JSON values. The worker
writes it to the broker at most once per job every `INTERVAL_S`, the latest value winning, and
`AsyncResult.progress`, the inspector and ``errands status`` read it back as a `Progress`.

Progress is best effort. A report is checked where the task makes it (a bad one raises
`ArgumentError` there), then it travels without a round trip of the task's own: a report lost on
the way (Redis unreachable or full, a worker that loses its lease) is dropped and never fails
or slows the job. The broker keeps a job's progress while the job lives, across retries and in
the dead set ("it died at step 3 of 5"), and deletes it with the job: when it succeeds, is
cancelled, or leaves the dead set.

The record as stored is JSON, ``{"p": fraction or null, "m": message, "d": data, "t": ms}``,
``t`` being when the task reported it (milliseconds since the epoch, the worker's clock).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from errands.errors import ArgumentError
from errands.message import check_json

__all__ = [
    "INTERVAL_S",
    "MAX_BYTES",
    "MAX_MESSAGE",
    "Progress",
    "ProgressSink",
    "encode_progress",
    "read_progress",
]

#: Characters of a progress message kept; a longer one is cut to this (its start, with "...").
MAX_MESSAGE = 500
#: The most bytes one encoded progress record may take (message, data and all); a report over
#: it is refused where it is made. A bound on the memory of each live job's progress in Redis
#: (the broker skips a bigger record too: MAX_PROGRESS in lua/progress.lua).
MAX_BYTES = 4096
#: At most one progress write per job per this many seconds. It must be long enough that a task
#: reporting in a tight loop costs a handful of writes (each one a message to the supervisor and
#: a share of a Redis call), short enough that someone watching ``errands status`` sees the job
#: move, and longer than the supervisor's batching tick (`errands.worker.progress.TICK_S`), so
#: that a job's reports never queue up behind each other there.
INTERVAL_S = 0.5


class Progress(msgspec.Struct, frozen=True):
    """How far a running job got, as its task last reported it (`TaskContext.set_progress`).

    Attributes:
        fraction: how much is done, from 0.0 to 1.0 (None: the task did not say).
        message: what it is doing, as the task put it ("step 2 of 5"); at most `MAX_MESSAGE`
            characters.
        data: the JSON values the task passed along (``rows=1200``).
        updated_at: when the task reported it (aware, UTC; the worker's clock).
    """

    fraction: float | None
    message: str
    data: dict[str, Any]
    updated_at: datetime


class _Wire(msgspec.Struct):
    """The stored record: short names, as the Lua header of the progress key gives them."""

    p: float | None = None
    m: str = ""
    d: dict[str, Any] = {}
    t: int = 0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Wire)


class ProgressSink(Protocol):
    """Where a worker's executor hands the progress its jobs report (the throttle behind it).

    `errands.worker.progress.ProgressOutbox` is the one a worker uses.
    """

    def offer(self, job_id: str, record: bytes) -> None:
        """Take job `job_id`'s latest progress record; never raises, never blocks for long."""
        ...


def _fraction(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(
            f"set_progress: fraction must be a number from 0 to 1 (0.4 is 40 %) or None, not "
            f"{value!r} ({type(value).__name__})"
        )
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ArgumentError(
            f"set_progress: fraction must be from 0 to 1 (0.4 is 40 %), not {value!r}: pass "
            "done / total, or None when the task cannot tell"
        )
    return float(value)


def _message(value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentError(
            f"set_progress: message must be a str, not {type(value).__name__}: pass str(...) "
            "of it, or put the value in the data (set_progress(0.5, 'copying', rows=120))"
        )
    if len(value) > MAX_MESSAGE:
        return value[: MAX_MESSAGE - 3] + "..."
    return value


def encode_progress(
    fraction: float | None, message: str, data: dict[str, Any], now_s: float
) -> bytes:
    """The stored record of one report, checked: what `TaskContext.set_progress` sends.

    Args:
        fraction: how much is done, 0 to 1, or None.
        message: what the task is doing; cut to `MAX_MESSAGE` characters.
        data: JSON values to show with it.
        now_s: when the task reported it (seconds since the epoch).

    Raises:
        ArgumentError: a fraction that is not a number from 0 to 1, a message that is not a
            str, data that are not JSON values (the message names the path of the bad one),
            or a record over `MAX_BYTES` encoded.
    """
    wire = _Wire(_fraction(fraction), _message(message), data, int(now_s * 1000))
    check_json(data, "data")
    try:
        record = _encoder.encode(wire)
    except (OverflowError, TypeError, ValueError) as error:  # an int beyond 64 bits, say
        raise ArgumentError(f"set_progress: the data cannot be encoded as JSON: {error}") from None
    if len(record) > MAX_BYTES:
        raise ArgumentError(
            f"set_progress: this report is {len(record):,} bytes encoded, over the bound of "
            f"{MAX_BYTES:,}: report a few small values (counts, the name of a step); put large "
            "data in the job's result, or store it elsewhere and report its key"
        )
    return record


def read_progress(raw: bytes | None) -> Progress | None:
    """The `Progress` a stored record holds; None for none, or a record that does not read."""
    if not raw:
        return None
    try:
        wire = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # written by something else: shown as no progress, never as an error
    try:
        updated = datetime.fromtimestamp(wire.t / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    fraction = wire.p if wire.p is None or 0 <= wire.p <= 1 else None
    return Progress(fraction, wire.m, wire.d, updated)
