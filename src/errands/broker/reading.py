"""Pure readers shared by every broker's inspector: raw records in, `errands.broker.views` out.

Each broker gathers what it holds of a job, a worker or a dead job (Redis in one read-only
function call, the memory broker from its dicts) and these functions read it, so both brokers
show a job the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from errands.broker.views import MAX_PAGE, Attempt, JobDetail, WorkerSummary
from errands.errors import ArgumentError
from errands.progress import read_progress
from errands.result import ErrorInfo
from errands.states import JobState

__all__ = [
    "JobFacts",
    "check_limit",
    "dead_cursor",
    "error_matches",
    "first_known",
    "job_detail",
    "payload_head",
    "read_dead_cursor",
    "worker_summary",
]


class JobFacts(msgspec.Struct, frozen=True):
    """What a broker holds of one job, as it holds it.

    Attributes:
        state: its state, as `Broker.job_state` reads it.
        outcome: its outcome JSON, while kept.
        attempts: attempts charged.
        meta: its meta fields by their names in the Lua library (``m`` max attempts, ``p``
            priority, ``st`` stalls, ``w`` worker, ``ik`` idempotency key, ``ch`` chord, ``f``
            when its latest delivery was handed out, ms); None when it has none (finished,
            unknown).
        payload: its record (JSON), while the job lives.
        history: the JSON array of its failed attempts (``a``, ``t`` ms, ``w``, ``e``).
        due_ms: when it is due, while scheduled.
        lease_ms: when its lease expires, while active.
        died_ms: when it died, while dead.
        progress: its progress record (JSON, `errands.progress`), while it has one.
    """

    state: str
    outcome: bytes | None
    attempts: int
    meta: Mapping[str, Any] | None = None
    payload: bytes | None = None
    history: bytes | None = None
    due_ms: float | None = None
    lease_ms: float | None = None
    died_ms: float | None = None
    progress: bytes | None = None


class _Record(msgspec.Struct, forbid_unknown_fields=False):
    task: str = "?"
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    enqueued_at: float | None = None
    headers: dict[str, Any] | None = None


class _Outcome(msgspec.Struct, forbid_unknown_fields=False):
    result: Any = None
    error: ErrorInfo | None = None
    finished_at: float | None = None


class _Step(msgspec.Struct, forbid_unknown_fields=False):
    a: int = 0
    t: float = 0
    w: str | None = None
    e: ErrorInfo | None = None


class _Head(msgspec.Struct, forbid_unknown_fields=False):
    task: str | None = None
    enqueued_at: float | None = None


_record = msgspec.json.Decoder(_Record)
_outcome = msgspec.json.Decoder(_Outcome)
_history = msgspec.json.Decoder(list[_Step])
_head = msgspec.json.Decoder(_Head)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _decoded(decoder: msgspec.json.Decoder[Any], data: bytes | None) -> Any:
    if not data:
        return None
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # a record that does not read shows as absent, never as an error


def job_detail(queue: str, job_id: str, facts: JobFacts) -> JobDetail | None:
    """The `JobDetail` of what a broker holds; None when it holds nothing of the job."""
    # A dead job's outcome says failed; where it is says more: in the dead set.
    state = JobState.DEAD if facts.died_ms is not None else JobState.parse(facts.state)
    if state is JobState.UNKNOWN and facts.meta is None:
        return None
    meta = facts.meta or {}
    record: _Record | None = _decoded(_record, facts.payload)
    outcome: _Outcome | None = _decoded(_outcome, facts.outcome)
    steps: list[_Step] = _decoded(_history, facts.history) or []
    chord = meta.get("ch")
    return JobDetail(
        id=job_id,
        queue=queue,
        state=state,
        task=record.task if record else None,
        args=record.args if record else None,
        kwargs=record.kwargs if record else None,
        headers=(record.headers or {}) if record else {},
        priority=int(meta.get("p", 0)),
        attempts=facts.attempts,
        max_attempts=int(meta["m"]) if "m" in meta else None,
        stalls=int(meta.get("st", 0)),
        worker=meta.get("w") if state is JobState.ACTIVE else None,
        enqueued_at=record.enqueued_at if record else None,
        started_at=_seconds(float(meta["f"])) if "f" in meta else None,
        due_at=_seconds(facts.due_ms),
        lease_expires_at=_seconds(facts.lease_ms),
        died_at=_seconds(facts.died_ms),
        finished_at=outcome.finished_at if outcome else None,
        result=outcome.result if outcome else None,
        error=outcome.error if outcome else None,
        history=[Attempt(s.a, s.t / 1000, s.w, s.e) for s in steps],
        idempotency_key=meta.get("ik"),
        chord=chord if isinstance(chord, str) else None,
        progress=read_progress(facts.progress),
    )


def first_known(found: Sequence[JobDetail | None]) -> JobDetail | None:
    """The first of `found` that the broker knows something of (`Inspector.find_job`)."""
    for job in found:
        if job is not None and job.state is not JobState.UNKNOWN:
            return job
    return None


def payload_head(payload: bytes | None) -> tuple[str | None, float | None]:
    """The task name and enqueue time of a job record (None for what it does not hold)."""
    head: _Head | None = _decoded(_head, payload)
    return (head.task, head.enqueued_at) if head else (None, None)


def worker_summary(worker_id: str, info: bytes) -> WorkerSummary:
    """A worker's record in a queue's worker list, read (fields it lacks are empty)."""
    try:
        data = msgspec.json.decode(info)
    except msgspec.DecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    holding = data.get("holding")
    return WorkerSummary(
        id=worker_id,
        host=str(data.get("host", "")),
        pid=int(data.get("pid", 0)),
        queues=[str(q) for q in data.get("queues", [])],
        pool=str(data.get("pool", "")),
        concurrency=int(data.get("concurrency", 0)),
        processed=int(data.get("processed", 0)),
        holding=[str(i) for i in holding] if isinstance(holding, list) else [],
        seen_at=float(data.get("seen", 0)) / 1000,
        held=int(data.get("held", 0)),
        started_at=_record_seconds(data.get("started")),
        lease_s=_record_seconds(data.get("lease")),
    )


def _record_seconds(ms: Any) -> float | None:
    """A time or duration in ms, as stored in a worker's record, in seconds (None: absent)."""
    return None if isinstance(ms, bool) or not isinstance(ms, (int, float)) else ms / 1000


def error_matches(kind: str, wanted: str | None) -> bool:
    """Whether error type `kind` is `wanted`: the same name, or `wanted` is its last part."""
    return not wanted or kind == wanted or kind.endswith("." + wanted)


def check_limit(limit: int) -> int:
    """`limit`, checked: a page holds 1 to `MAX_PAGE` items."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ArgumentError(f"limit must be an int from 1 to {MAX_PAGE}, not {limit!r}")
    return limit


def dead_cursor(score: float, seen: int) -> str:
    """The cursor of a page of dead jobs: where the next page starts (see `read_dead_cursor`)."""
    return f"{int(score)}:{seen}"


def read_dead_cursor(cursor: str) -> tuple[int, int]:
    """The (time of death in ms, entries at that time already seen) a dead-page cursor holds.

    Raises:
        ArgumentError: not a cursor a page of dead jobs gave.
    """
    score, _, seen = cursor.partition(":")
    try:
        parsed = int(score), int(seen)
    except ValueError:
        parsed = (0, -1)
    if parsed[1] < 0:
        raise ArgumentError(
            f"cursor {cursor!r} is not one a page of dead jobs gave: pass the `cursor` of the "
            "previous page as it is, or none to start again"
        )
    return parsed
