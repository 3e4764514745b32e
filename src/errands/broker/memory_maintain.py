"""maintain.lua in memory: the bounded housekeeping of one `QueueState`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from errands.broker.memory_records import worker_live
from errands.broker.settings import BrokerSettings
from errands.broker.types import MaintenanceReport

if TYPE_CHECKING:
    from errands.broker.memory_state import QueueState

__all__ = ["maintain"]

MAX_BATCH = 1000  # as in 00_shared.lua


def maintain(
    q: QueueState, now: int, owner: str, lock_ms: int, settings: BrokerSettings
) -> MaintenanceReport | None:
    """maintain.lua: bounded housekeeping; None while another owner holds the lock."""
    if q.maint_until is not None and now < q.maint_until:
        if q.maint_owner != owner:
            return None
    else:
        q.maint_until, q.maint_owner = now + lock_ms, owner
    limit, cap = settings.maintenance_limit, settings.dead_max_count
    died: list[tuple[str, bytes]] = []
    q.died = died
    try:
        promoted = q._promote_due(now, limit)
        reaped = q._reap_expired(now, limit, cap)
    finally:
        q.died = None
    old = q.results_x.pop_min(limit, now)
    for job_id in old:
        q.results.pop(job_id, None)
    stale = q.idem_x.pop_min(limit, now)
    for key in stale:
        q.idem.pop(key, None)
    chords_failed = q.chords.expire(now, limit)
    trimmed = q._trim_dead(cap)
    aged = q.dead.pop_min(limit, now - settings.dead_max_age_ms)
    q._forget(aged)
    silent = [
        worker_id
        for worker_id, info in list(q.workers.items())[:limit]
        if not worker_live(info, now, settings.worker_silence_ms)
    ]
    for worker_id in silent:
        del q.workers[worker_id]
    saturated = (
        max(promoted, reaped, len(old), len(stale), chords_failed, len(aged)) >= limit
        or trimmed >= MAX_BATCH
    )
    return MaintenanceReport(
        promoted,
        reaped,
        len(old),
        len(stale),
        trimmed + len(aged),
        len(silent),
        chords_failed,
        saturated,
        died,
    )
