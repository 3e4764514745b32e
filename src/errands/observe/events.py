"""The event stream: job events in a capped Redis stream per queue (off by default).

With ``App(..., events_maxlen=10_000)``, the enqueue, fetch, ack and cancel functions append
an event to the queue's stream (``<namespace>:{<queue>}:events``, so each call stays in the
queue's Cluster slot) in the same atomic step as the change it tells of, trimmed to about
`events_maxlen` (``XADD MAXLEN ~``). Off, each call pays one branch. ``errands events`` reads
them (`read_events`, `follow_events`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from errands.errors import ConfigurationError

if TYPE_CHECKING:
    import redis

    from errands.broker.base import Broker

__all__ = ["EVENT_KINDS", "JobEvent", "check_events_maxlen", "follow_events", "read_events"]

#: What the stream tells of.
EVENT_KINDS = ("enqueued", "started", "succeeded", "retried", "deferred", "dead", "cancelled")
#: The longest a blocking read waits before it looks at Ctrl-C again (ms).
BLOCK_MS = 1_000


def check_events_maxlen(maxlen: int, broker: Broker | None) -> int:
    """`maxlen` checked: an int >= 0; above 0 only with a Redis broker (or none given yet)."""
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 0:
        raise ConfigurationError(
            f"events_maxlen must be a number of events >= 0 (0: no stream), not {maxlen!r}"
        )
    if maxlen and broker is not None:
        from errands.broker.redis import RedisBroker  # noqa: PLC0415 - only with events on

        if not isinstance(broker, RedisBroker):
            raise ConfigurationError(
                f"{type(broker).__name__} keeps no event stream: events_maxlen needs a Redis "
                "broker (leave it 0 with this one)"
            )
    return maxlen


class JobEvent(msgspec.Struct, frozen=True):
    """One job event.

    Attributes:
        id: the stream entry id (``<ms>-<n>``): where a later read goes on from.
        at: when it happened (ISO 8601, UTC: the Redis server's clock).
        queue: the job's queue.
        event: one of `EVENT_KINDS`.
        job: the job id.
        task: the task name (None where the call did not know it).
        attempt: the attempt it tells of (0 before the first run).
        error: the error type, for retried and dead.
    """

    id: str
    at: str
    queue: str
    event: str
    job: str
    task: str | None
    attempt: int
    error: str | None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _event(queue: str, entry_id: Any, fields: dict[Any, Any]) -> JobEvent:
    f = {_s(k): _s(v) for k, v in fields.items()}
    eid = _s(entry_id)
    ms = int(eid.partition("-")[0])
    return JobEvent(
        id=eid,
        at=datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds"),
        queue=queue,
        event=f.get("e", "?"),
        job=f.get("j", ""),
        task=f.get("t") or None,
        attempt=int(f.get("a") or 0),
        error=f.get("x") or None,
    )


def stream_key(namespace: str, queue: str) -> str:
    """The stream of `queue` (KEYS[27] of every queue function, keys.py)."""
    from errands.broker.redis.keys import QueueKeys  # noqa: PLC0415

    return QueueKeys(namespace, queue).prefix + "events"


def _start(since: float | None) -> str:
    return "-" if since is None else str(max(0, math.floor(since * 1000)))


def read_events(
    client: redis.Redis,
    namespace: str,
    queues: Sequence[str],
    *,
    since: float | None = None,
    limit: int = 100,
) -> list[JobEvent]:
    """The last `limit` events of `queues` from `since` (epoch seconds; None: the oldest kept).

    One XREVRANGE per queue, bounded by `limit`; merged in time order.
    """
    found: list[JobEvent] = []
    for queue in queues:
        entries: Any = client.xrevrange(
            stream_key(namespace, queue), max="+", min=_start(since), count=limit
        )
        found += [_event(queue, eid, fields) for eid, fields in entries]
    found.sort(key=lambda e: tuple(int(p) for p in e.id.split("-")))
    return found[-limit:]


def follow_events(
    client: redis.Redis,
    namespace: str,
    queues: Sequence[str],
    *,
    after: dict[str, str] | None = None,
    block_ms: int = BLOCK_MS,
) -> Iterator[JobEvent | None]:
    """Events of `queues` as they come (XREAD BLOCK), after `after` (queue -> entry id).

    New events only by default. Yields None after each `block_ms` without any, so that a
    caller can stop (Ctrl-C is looked at between reads).
    """
    keys = {stream_key(namespace, q): q for q in queues}
    last = {key: (after or {}).get(q, "$") for key, q in keys.items()}
    while True:
        reply: Any = client.xread(last, count=100, block=block_ms)  # type: ignore[arg-type]
        if not reply:
            yield None
            continue
        items = reply.items() if isinstance(reply, dict) else reply
        for key, entries in items:
            k = _s(key)
            for eid, fields in entries:
                last[k] = _s(eid)
                yield _event(keys[k], eid, fields)
