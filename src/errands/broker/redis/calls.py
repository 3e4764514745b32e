"""Pure builders and parsers for each Redis Function call: written once, used sync and async.

A `Call` holds the FCALL arguments and how to read the reply; `RedisBroker` only executes it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

import hiredis
import msgspec

from errands.broker.base import BrokerSettings
from errands.broker.redis.keys import QueueKeys
from errands.broker.redis.library import function_name, operation_of
from errands.broker.types import (
    AckCode,
    CancelCode,
    Delivery,
    Enqueued,
    Fetched,
    HeartbeatReply,
    JobSnapshot,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
)
from errands.states import JobState

__all__ = ["Call"]

T = TypeVar("T")
Arg = str | bytes | int | float

_MODES = {"window": "w", "until_finished": "u"}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One FCALL: function name, KEYS, ARGV, and the parser of its reply."""

    function: str
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    parse: Callable[[Any], T]
    read_only: bool = False
    #: Sending it twice does what sending it once does: after a connection error, a call that
    #: may have reached Redis is sent again only if this holds (a fetch would lease a second
    #: batch, the first waiting out its lease).
    repeatable: bool = True

    @property
    def name(self) -> str:
        """The operation, for messages: ``fetch``, ``ack``..."""
        return operation_of(self.function)

    def packed(self) -> bytes:
        """The command (FCALL, or FCALL_RO) in the Redis protocol, ready to send.

        Its head (verb, function, every key of the queue) is the same for every call of one
        function on one queue: it is packed once, and only the arguments are packed per call.
        """
        verb = "FCALL_RO" if self.read_only else "FCALL"
        head = _heads.get((verb, self.function, self.keys))
        if head is None:
            if len(_heads) >= _MAX_HEADS:
                _heads.clear()
            head = _bulk((verb, self.function, len(self.keys), *self.keys))
            _heads[verb, self.function, self.keys] = head
        count = 3 + len(self.keys) + len(self.args)
        return b"*%d\r\n%s%s" % (count, head, _bulk(self.args) if self.args else b"")


_heads: dict[tuple[str, str, tuple[str, ...]], bytes] = {}
_MAX_HEADS = 4096  # functions x queues: a bound for apps that make up queue names on the fly


def _bulk(items: tuple[Arg, ...]) -> bytes:
    """The bulk strings of `items` in the Redis protocol, without the array header."""
    packed: bytes = hiredis.pack_command(items)  # type: ignore[arg-type]
    return packed[packed.index(b"\r\n") + 2 :]


def _meta_head(
    max_attempts: int,
    priority: int,
    max_stalls: int,
    result_ttl_ms: int,
    ignore_result: bool,
    scheduled: bool,
    idempotency_key: str | None,
    idempotency_mode: str,
    chord: tuple[str, str, int] | None = None,
    limits: tuple[str, ...] = (),
) -> bytes:
    """A new job's meta map in msgpack, all but the value of its last key, ``sc`` (enqueue.lua)."""
    meta: dict[str, Any] = {
        "a": 0,
        "m": max_attempts,
        "p": priority,
        "st": 0,
        "xs": max_stalls,
        "d": 0,
        "rt": result_ttl_ms,
        "ir": 1 if ignore_result else 0,
        "s": "scheduled" if scheduled else "queued",
    }
    if idempotency_key is not None:
        meta["ik"] = idempotency_key
        meta["im"] = _MODES[idempotency_mode]
    if chord is not None:
        meta["ch"], meta["cq"], meta["ci"] = chord
    if limits:
        meta["lm"] = list(limits)
    meta["sc"] = None  # last, so that dropping its nil leaves the map ending with the key
    packed = msgspec.msgpack.encode(meta)
    return packed[:-1]


# Jobs of one task sent alike (no idempotency key) share their meta: packed once, not per job.
_shared_meta_head = lru_cache(maxsize=256)(_meta_head)


def enqueue(
    keys: QueueKeys, jobs: Sequence[NewJob], *, continues: bool = False, events_maxlen: int = 0
) -> Call[list[Enqueued]]:
    """Build the enqueue call for a batch of jobs.

    `continues`: the jobs are the next steps of finished jobs (enqueue.lua's `continue`, which a
    full Redis still takes). `events_maxlen`: the event stream's cap (0: no events).
    """
    args: list[Arg] = [keys.result_channel_prefix, len(jobs)]
    for job in jobs:
        key = job.idempotency_key
        chord = (job.chord, job.chord_queue, job.chord_index) if job.chord else None
        args += (
            job.id,
            job.payload,
            (_shared_meta_head if key is None and chord is None else _meta_head)(
                job.max_attempts,
                job.priority,
                job.max_stalls,
                job.result_ttl_ms,
                job.ignore_result,
                job.delay_ms > 0,
                key,
                job.idempotency_mode,
                chord,
                job.limits,
            ),
            job.priority,
            job.delay_ms,
            key or "",
            job.idempotency_ttl_ms,
        )
    args.append(events_maxlen)

    def parse(reply: list[Any]) -> list[Enqueued]:
        # A new job's id is the one sent; only a duplicate's (an earlier job's) is read back.
        return [
            Enqueued(job.id, True) if reply[2 * k + 1] == 1 else Enqueued(_s(reply[2 * k]), False)
            for k, job in enumerate(jobs)
        ]

    name = function_name("continue" if continues else "enqueue")
    return Call(name, keys.all, tuple(args), parse)


def _pairs(flat: list[Any]) -> list[tuple[str, bytes]]:
    return [(_s(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def _parse_fetched(reply: list[Any]) -> Fetched:
    flat, next_due, paused, next_expiry, more, died = reply
    jobs = [
        Delivery(_s(flat[i]), flat[i + 1], int(flat[i + 2]), _s(flat[i + 3]))
        for i in range(0, len(flat), 4)
    ]
    return Fetched(
        jobs,
        None if next_due < 0 else int(next_due),
        paused == 1,
        None if next_expiry < 0 else int(next_expiry),
        more == 1,
        _pairs(died) if died else [],
    )


def fetch(
    keys: QueueKeys,
    settings: BrokerSettings,
    n: int,
    lease_ms: int,
    worker_id: str,
    limited: int | None = None,
) -> Call[Fetched]:
    """Build the fetch call: lease up to `n` jobs for `lease_ms`, `limited` of limited tasks."""
    args: tuple[Arg, ...] = (
        keys.result_channel_prefix,
        n,
        lease_ms,
        worker_id,
        settings.promote_limit,
        settings.reap_limit,
        settings.dead_max_count,
        settings.limits,
        n if limited is None else limited,
        settings.events_maxlen,
    )
    return Call(function_name("fetch"), keys.all, args, _parse_fetched, repeatable=False)


def ack(
    keys: QueueKeys, settings: BrokerSettings, outcomes: Sequence[Outcome]
) -> Call[list[AckCode]]:
    """Build the ack call for a batch of outcomes."""
    args: list[Arg] = [keys.result_channel_prefix, settings.dead_max_count, len(outcomes)]
    for o in outcomes:
        args += (o.id, o.token, o.kind, o.outcome, o.retry_delay_ms)
    args.append(settings.events_maxlen)

    def parse(reply: list[Any]) -> list[AckCode]:
        return [AckCode(int(code)) for code in reply]

    return Call(function_name("ack"), keys.all, tuple(args), parse)


def heartbeat(
    keys: QueueKeys,
    worker_id: str,
    worker_info: bytes,
    leases: Sequence[Lease],
    lease_ms: int,
    started: Collection[str] = (),
) -> Call[HeartbeatReply]:
    """Build the heartbeat call renewing `leases`; those in `started` are running (or ran)."""
    args: list[Arg] = [lease_ms, worker_id, worker_info, len(leases)]
    for lease in leases:
        args += (lease.id, lease.token, 1 if lease.id in started else 0)

    def parse(reply: list[Any]) -> HeartbeatReply:
        return HeartbeatReply([_s(i) for i in reply[0]], [_s(i) for i in reply[1]])

    return Call(function_name("heartbeat"), keys.all, tuple(args), parse)


def release(keys: QueueKeys, leases: Sequence[Lease]) -> Call[int]:
    """Build the release call giving `leases` back."""
    args: list[Arg] = [keys.result_channel_prefix, len(leases)]
    for lease in leases:
        args += (lease.id, lease.token)
    return Call(function_name("release"), keys.all, tuple(args), int)


def cancel(keys: QueueKeys, job_id: str, events_maxlen: int = 0) -> Call[CancelCode]:
    """Build the cancel call for one job (`events_maxlen`: the event stream's cap, 0: none)."""
    return Call(
        function_name("cancel"),
        keys.all,
        (keys.result_channel_prefix, job_id, events_maxlen),
        lambda reply: CancelCode(int(reply)),
    )


def redrive(keys: QueueKeys, job_ids: Sequence[str], limit: int) -> Call[list[str]]:
    """Build the redrive call (given dead jobs, else the oldest `limit`)."""
    return Call(
        function_name("redrive"), keys.all, (limit, *job_ids), lambda reply: [_s(i) for i in reply]
    )


def purge(keys: QueueKeys, job_ids: Sequence[str], limit: int) -> Call[int]:
    """Build the purge call (given dead jobs, else the oldest `limit`)."""
    return Call(function_name("purge"), keys.all, (limit, *job_ids), int)


def purge_ready(keys: QueueKeys, delayed: bool, limit: int) -> Call[int]:
    """Build the call deleting a batch of ready (and, with `delayed`, delayed) jobs."""
    return Call(function_name("purge_ready"), keys.all, (limit, 1 if delayed else 0), int)


def set_paused(keys: QueueKeys, paused: bool) -> Call[bool]:
    """Build the call pausing or resuming a queue (True: that changed it)."""
    return Call(function_name("set_paused"), keys.all, (1 if paused else 0,), bool)


def worker_leave(keys: QueueKeys, worker_id: str) -> Call[bool]:
    """Build the call taking a stopping worker off the queue's worker list."""
    return Call(function_name("worker_leave"), keys.all, (worker_id,), bool)


def maintain(
    keys: QueueKeys, settings: BrokerSettings, owner: str, lock_ms: int
) -> Call[MaintenanceReport | None]:
    """Build the maintenance call."""
    args: tuple[Arg, ...] = (
        keys.result_channel_prefix,
        owner,
        lock_ms,
        settings.maintenance_limit,
        settings.dead_max_count,
        settings.dead_max_age_ms,
        settings.worker_silence_ms,
    )

    def parse(reply: list[Any]) -> MaintenanceReport | None:
        if int(reply[0]) < 0:
            return None
        *counts, died = reply
        promoted, reaped, results, stale, dead, workers, chords, saturated = map(int, counts)
        return MaintenanceReport(
            promoted,
            reaped,
            results,
            stale,
            dead,
            workers,
            chords,
            saturated == 1,
            _pairs(died) if died else [],
        )

    return Call(function_name("maintain"), keys.all, args, parse)


def result(keys: QueueKeys, job_id: str) -> Call[JobSnapshot]:
    """Build the read of one job's state and outcome."""

    def parse(reply: list[Any]) -> JobSnapshot:
        state, outcome, attempts = reply
        return JobSnapshot(JobState.parse(_s(state)), outcome or None, int(attempts))

    return Call(function_name("result"), keys.all, (job_id,), parse, read_only=True)


def chord_start(
    keys: QueueKeys,
    chord_id: str,
    size: int,
    callback: NewJob,
    placeholder: bytes,
    send_within_ms: int,
) -> Call[bool]:
    """Build the call recording a chord (in its callback's queue) before its members go out."""
    args: tuple[Arg, ...] = (
        chord_id,
        size,
        callback.payload,
        placeholder,
        callback.priority,
        callback.max_attempts,
        callback.result_ttl_ms,
        1 if callback.ignore_result else 0,
        callback.max_stalls,
        send_within_ms,
    )
    return Call(function_name("chord_start"), keys.all, args, lambda reply: reply == 1)


def chord_arm(keys: QueueKeys, chord_id: str, expires_in_ms: int) -> Call[bool]:
    """Build the call saying that every member of a chord was sent."""
    args: tuple[Arg, ...] = (keys.result_channel_prefix, chord_id, expires_in_ms)
    return Call(function_name("chord_arm"), keys.all, args, lambda reply: reply == 1)


def chord_part(keys: QueueKeys, chord_id: str, index: int, result: bytes) -> Call[int]:
    """Build the call counting one member's result (the last one enqueues the callback)."""
    args: tuple[Arg, ...] = (keys.result_channel_prefix, chord_id, index, result)
    return Call(function_name("chord_part"), keys.all, args, int)


def chord_abort(keys: QueueKeys, chord_id: str, outcome: bytes) -> Call[bool]:
    """Build the call failing a chord whose member failed for good."""
    args: tuple[Arg, ...] = (keys.result_channel_prefix, chord_id, outcome)
    return Call(function_name("chord_abort"), keys.all, args, lambda reply: reply == 1)
