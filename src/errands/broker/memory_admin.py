"""The operator's changes in memory, as their Lua functions make them on Redis.

``redrive.lua`` (`redrive`), ``purge.lua`` (`purge_dead`), ``purge_ready.lua``
(`purge_waiting`), ``pause.lua`` (`set_paused`) and ``leave.lua`` (`leave`): each works on one
`QueueState` under the broker's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from errands.broker.memory_state import QueueState
    from errands.broker.zset import ZSet

__all__ = ["leave", "purge_dead", "purge_waiting", "redrive", "set_paused"]


def redrive(q: QueueState, job_ids: Sequence[str], limit: int) -> list[str]:
    """redrive.lua: dead jobs back to ready with fresh attempts and no result."""
    moved: list[str] = []
    for job_id in q._pick(q.dead, job_ids, limit):
        m = q.meta.get(job_id)
        if m is not None and m.state == "dead":
            q.dead.discard(job_id)
            q.results.pop(job_id, None)
            q.results_x.discard(job_id)
            m.attempts = m.stalls = m.lost = 0
            m.idempotency_key = None
            q._to_ready(job_id, m, q._ready_score(m.priority))
            moved.append(job_id)
    q._arm_wake(len(moved))
    return moved


def purge_dead(q: QueueState, job_ids: Sequence[str], limit: int) -> int:
    """purge.lua: delete dead jobs for good (their results stay until they expire)."""
    deleted = 0
    for job_id in q._pick(q.dead, job_ids, limit):
        if q.dead.discard(job_id):
            q._forget([job_id])
            deleted += 1
    return deleted


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
