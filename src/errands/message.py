"""The wire record of a job, its JSON encoding, and the check that arguments are JSON values.

Nothing is ever unpickled: a job travels as JSON, so a broker can never run code in a worker.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec

from errands.errors import ArgumentError

__all__ = ["JobEnvelope", "JobRecord", "Link", "check_json", "decode_record", "encode_record"]

_SCALARS = (str, int, bool, type(None))


class Link(msgspec.Struct, omit_defaults=True):
    """A step to enqueue when a job succeeds (the rest of a chain).

    Attributes:
        task: the task name.
        args: positional arguments; the parent's result goes first unless `immutable`.
        kwargs: keyword arguments.
        queue: the queue (the task's own when None).
        priority: the priority (the task's own when None).
        immutable: do not pass the parent's result (a full ``.s()`` signature).
        countdown: seconds to wait before the step may run.
        chord: set on the members of a chord: instead of a step, the job's result is counted
            as member `index` of chord `chord`, whose callback waits in `queue`.
        index: the member's place in its chord.
    """

    task: str = ""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    queue: str | None = None
    priority: int | None = None
    immutable: bool = False
    countdown: float | None = None
    chord: str = ""
    index: int = 0


class JobRecord(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """One job as stored in Redis: what to run and with which arguments.

    Task options that may differ per call travel here; the rest comes from the task definition
    the worker imports, so an old job never overrides a newer deployment's retry policy.
    """

    # The fields before the arguments come first in the JSON, in this order: the inspector's
    # Lua reads the task and enqueue time at the head of a payload without parsing it
    # (payload_head in lua/00_shared.lua).
    id: str
    task: str
    queue: str
    priority: int = 0
    enqueued_at: float = 0.0
    soft_time_limit: float | None = None
    time_limit: float | None = None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    links: list[Link] | None = None
    headers: dict[str, Any] | None = None  # set by middleware, read by the task's context
    scheduled_for: float | None = None  # a schedule's fire: its nominal time (Unix seconds)


class JobEnvelope(msgspec.Struct, forbid_unknown_fields=False):
    """The part of a job the supervisor reads; arguments stay unparsed for the child."""

    id: str
    task: str
    soft_time_limit: float | None = None
    time_limit: float | None = None


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(JobRecord)
_envelope_decoder = msgspec.json.Decoder(JobEnvelope)


def encode_record(record: JobRecord, max_bytes: int) -> bytes:
    """Encode a job, refusing a payload over `max_bytes` with a message that says what to do."""
    data = _encoder.encode(record)
    if len(data) > max_bytes:
        raise ArgumentError(
            f"the payload of task {record.task!r} is {len(data):,} bytes, over the limit of "
            f"{max_bytes:,}: store large data elsewhere (a file, object storage, a database row) "
            "and pass its key, or raise App(max_payload_bytes=...)"
        )
    return data


# Every field of a record present, with one-character strings and short numbers: what a payload
# has besides its strings, arguments and the length of its numbers.
_FRAME = len(
    _encoder.encode(
        JobRecord(
            id="i", task="t", queue="q", args=[0], kwargs={"k": 0}, priority=9, enqueued_at=1.5,
            soft_time_limit=1.5, time_limit=1.5,
        )
    )
)  # fmt: skip
_FLOAT_CHARS = 24  # the longest JSON a float takes: -1.2345678901234567e-308


def payload_bound(
    task: str, queue: str, job_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> int:
    """At least the size in bytes of the payload of a job without links (`encode_record`).

    Cheaper than building it: arguments are encoded only when there are some, and a string's
    JSON is at most 6 bytes per byte of UTF-8 (a control character is escaped in six).
    """
    strings = len(task.encode()) + len(queue.encode()) + len(job_id.encode())
    arguments = (len(_encoder.encode(args)) if args else 0) + (
        len(_encoder.encode(kwargs)) if kwargs else 0
    )
    return _FRAME + 6 * strings + arguments + 3 * _FLOAT_CHARS


def decode_record(data: bytes) -> JobRecord:
    """Decode a whole job record (the child does this, with the arguments)."""
    return _record_decoder.decode(data)


def decode_envelope(data: bytes) -> JobEnvelope:
    """Decode only what the supervisor needs from a payload."""
    return _envelope_decoder.decode(data)


def _hint(value: object) -> str:
    """Say what the value is and what to pass instead."""
    hints: list[tuple[type | tuple[type, ...], str]] = [
        (_dt.datetime, "a datetime: pass an ISO 8601 string (value.isoformat())"),
        (_dt.date, "a date: pass an ISO 8601 string (value.isoformat())"),
        (_dt.time, "a time: pass an ISO 8601 string (value.isoformat())"),
        (_dt.timedelta, "a timedelta: pass a number of seconds (value.total_seconds())"),
        ((set, frozenset), "a set: pass a list (sorted(value))"),
        (tuple, "a tuple: pass a list"),
        ((bytes, bytearray, memoryview), "bytes: pass a base64 or text string"),
        (decimal.Decimal, "a Decimal: pass a string (str(value)) to keep its precision"),
        (uuid.UUID, "a UUID: pass a string (str(value))"),
        (enum.Enum, "an Enum: pass its value (value.value)"),
        (complex, "a complex number: pass [real, imag]"),
    ]
    for kind, text in hints:
        if isinstance(value, kind):
            return text
    if callable(value):
        return f"a callable ({type(value).__name__}): pass a task signature or a name instead"
    if hasattr(value, "read") or hasattr(value, "fileno"):
        return f"a file or stream ({type(value).__name__}): pass a path or the data as a string"
    return (
        f"a {type(value).__module__}.{type(value).__qualname__}: pass its id and load it inside "
        "the task, or a dict of plain values"
    )


#: Lists and dicts nest at most this deep in arguments and results: deeper, a value cannot be
#: encoded (the encoder, and every JSON reader, recurses) or refers to itself.
MAX_DEPTH = 100


def check_json(value: object, path: str, depth: int = 0) -> None:
    """Raise `ArgumentError` naming the first value under `path` that is not a JSON value.

    JSON values are str, int, float (finite), bool, None, list, and dict with str keys, nested
    at most `MAX_DEPTH` deep.
    """
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is float:
        if not math.isfinite(cast("float", value)):
            raise ArgumentError(f"{path} is {value}, which JSON cannot hold: pass None or a string")
        return
    if kind is not list and kind is not dict:
        raise ArgumentError(f"{path} is {_hint(value)}")
    if depth >= MAX_DEPTH:
        raise ArgumentError(
            f"{path} nests lists or dicts more than {MAX_DEPTH} deep (or contains itself): "
            "flatten it, or store it elsewhere and pass its key"
        )
    if kind is list:
        for index, item in enumerate(cast("list[object]", value)):
            check_json(item, f"{path}[{index}]", depth + 1)
        return
    for key, item in cast("dict[object, object]", value).items():
        if type(key) is not str:
            raise ArgumentError(
                f"{path} has the key {key!r} ({type(key).__name__}): JSON object keys are "
                "strings, so pass str(key)"
            )
        check_json(item, f"{path}[{_encoder.encode(key).decode()}]", depth + 1)


def check_arguments(args: tuple[Any, ...] | list[Any], kwargs: Mapping[str, Any]) -> None:
    """Check every positional and keyword argument of a call (see `check_json`)."""
    for index, item in enumerate(args):
        check_json(item, f"args[{index}]")
    for key, item in kwargs.items():
        check_json(item, f"kwargs[{_encoder.encode(key).decode()}]")
