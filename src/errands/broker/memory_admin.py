"""The operator's changes in memory, as their Lua functions make them on Redis.

``purge_ready.lua`` (`purge_waiting`), ``pause.lua`` (`set_paused`) and ``leave.lua`` (`leave`):
each works on one `QueueState` under the broker's lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from errands.broker.memory_state import QueueState
    from errands.broker.zset import ZSet

__all__ = ["leave", "purge_waiting", "set_paused"]


def _drop_waiting(q: QueueState, waiting: ZSet, state: str, limit: int) -> tuple[int, int]:
    """drop_waiting: the first `limit` entries of `waiting` leave it; those in `state` go."""
    ids = [job_id for job_id, _ in waiting.lowest(limit)]
    deleted = 0
    for job_id in ids:
        waiting.discard(job_id)
        m = q.meta.get(job_id)
        if m is not None and m.state != state:
            continue
        if m is not None:
            key = m.idempotency_key
            if key and q.idem.get(key) == job_id:
                del q.idem[key]
                q.idem_x.discard(key)
            if m.limits is not None:
                q.limits.unpark(job_id, m.limits)
        for records in (q.jobs, q.meta, q.history, q.progress):
            records.pop(job_id, None)
        q.cancel_requests.discard(job_id)
        deleted += 1
    return deleted, len(ids)


def purge_waiting(q: QueueState, delayed: bool, limit: int) -> int:
    """purge_ready.lua: delete up to `limit` ready jobs (then delayed ones, with `delayed`)."""
    deleted, looked = _drop_waiting(q, q.ready, "queued", limit)
    if delayed and looked < limit:
        deleted += _drop_waiting(q, q.delayed, "scheduled", limit - looked)[0]
    return deleted


def set_paused(q: QueueState, paused: bool) -> bool:
    """pause.lua: pause or resume; False when the queue already was so."""
    if q.paused == paused:
        return False
    q.paused = paused
    return True


def leave(q: QueueState, worker_id: str) -> bool:
    """leave.lua: take the worker off the queue's worker list."""
    return q.workers.pop(worker_id, None) is not None
