"""The limiters of one in-memory queue: a mirror of ``broker/redis/lua/01_limits.lua``.

`QueueLimits` keeps what the ``limits`` and ``limit_wait`` keys hold, and each method does what
the Lua helper of the same name does. `errands.conformance` holds both to the same behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import msgspec

__all__ = ["LimitRecord", "QueueLimits", "free_run", "limit_config"]

# As in 01_limits.lua: how late a booked rate slot is still good (half an interval, at least
# this), how long a job parked on a cap waits before it is checked again by itself.
LIMIT_GRACE_MS = 20
LIMIT_PARK_MS = 300_000

WaitKind = Literal["rate", "cap"]
RATE_LIMITED_FREE = 100  # as in ack.lua (errands.errors.MAX_RATE_LIMITED)


@lru_cache(maxsize=16)
def limit_config(packed: bytes) -> dict[str, dict[str, Any]]:
    """The limiter map a fetch carries (`errands.limits.pack_limiters`), decoded."""
    if not packed:
        return {}
    decoded = msgspec.msgpack.decode(packed)
    return decoded if isinstance(decoded, dict) else {}


@dataclass(slots=True)
class LimitRecord:
    """One "<limiter>|<key>" record: GCRA time, back-off end (ms), jobs holding its slots."""

    t: float = 0.0
    bo: float = 0.0
    holders: list[str] = field(default_factory=list)


@dataclass(slots=True)
class JobLimits:
    """What a job carries of its limiters (meta lm, lh, rv, lw, lq and rl in Lua)."""

    records: tuple[str, ...] = ()
    holding: list[str] | None = None
    booked: dict[str, float] | None = None
    parked: str | None = None
    waiting: bool = False
    rate_limited: int = 0


def free_run(kind: str, job: JobLimits | None) -> bool:
    """ack.lua: a run that spends no attempt (deferred; limited, RATE_LIMITED_FREE times)."""
    if kind == "deferred":
        return True
    return kind == "limited" and (job.rate_limited if job is not None else 0) < RATE_LIMITED_FREE


def _limiter_of(rid: str) -> str:
    return rid.split("|", 1)[0]


class QueueLimits:
    """The limiter state of one queue."""

    def __init__(self) -> None:
        self.records: dict[str, LimitRecord] = {}
        self.waiters: dict[str, list[str]] = {}  # record -> parked job ids, oldest first

    def record(self, rid: str) -> LimitRecord:
        """The state of `rid`, made on first use."""
        found = self.records.get(rid)
        if found is None:
            found = self.records[rid] = LimitRecord()
        return found

    def admit(
        self,
        job_id: str,
        job: JobLimits,
        cfg: dict[str, dict[str, Any]],
        now: int,
        is_active: Any,
    ) -> tuple[float, str, WaitKind] | None:
        """admit: None when the job may start (it takes its slots), else how it waits."""
        rates: list[tuple[LimitRecord, float]] = []
        caps: list[tuple[LimitRecord, str]] = []
        for rid in job.records:
            c = cfg.get(_limiter_of(rid))
            if c is None:
                continue
            s = self.record(rid)
            interval = c.get("t")
            if interval:
                burst = max(int(c.get("b", 1)), 1)
                booked = (job.booked or {}).get(rid)
                good = (
                    booked is not None
                    and booked >= s.bo
                    and now <= booked + max(interval / 2, LIMIT_GRACE_MS)
                )
                if not good:
                    tat = max(s.t, now, s.bo + (burst - 1) * interval)
                    allow_at = tat - (burst - 1) * interval
                    if allow_at >= now + 1:  # as in Lua: this ms's slots are now's
                        s.t = tat + interval
                        job.booked = {**(job.booked or {}), rid: allow_at}
                        return allow_at, rid, "rate"
                    rates.append((s, tat + interval))
            cap = c.get("c")
            if cap is not None:
                if len(s.holders) >= cap:
                    s.holders = [h for h in s.holders if is_active(h)]
                if len(s.holders) >= cap:
                    return now + LIMIT_PARK_MS, rid, "cap"
                caps.append((s, rid))
        for s, tat in rates:
            s.t = tat
        for s, _ in caps:
            s.holders.append(job_id)
        job.booked = None
        job.holding = [rid for _, rid in caps] or None
        return None

    def park(self, job_id: str, job: JobLimits, rid: str, kind: WaitKind) -> None:
        """wait_for_limit, its limit_wait part: a job parked on a cap is listed as waiting."""
        job.waiting = True
        job.parked = None
        if kind == "cap":
            self.waiters.setdefault(rid, []).append(job_id)
            job.parked = rid

    def unpark(self, job_id: str, job: JobLimits) -> None:
        """unpark: a job that stops waiting on a cap leaves the waiters' list."""
        if job.parked is not None:
            listed = self.waiters.get(job.parked, [])
            if job_id in listed:
                listed.remove(job_id)
        job.parked = None

    def free_slots(self, job_id: str, job: JobLimits) -> list[str]:
        """free_slots: give back the job's slots; returns the waiters to make due (one each)."""
        woken: list[str] = []
        for rid in job.holding or ():
            s = self.records.get(rid)
            if s is not None:
                s.holders = [h for h in s.holders if h != job_id]
            listed = self.waiters.get(rid)
            if listed:
                woken.append(listed.pop(0))
        job.holding = None
        return woken

    def back_off(self, job: JobLimits, due: float) -> None:
        """back_off: the job's limiters start nothing before `due`."""
        for rid in job.records:
            s = self.record(rid)
            s.bo = max(s.bo, due)

    def rate_limited(self, job: JobLimits | None, due: float) -> JobLimits:
        """A RateLimited run: counted on the job, and its limiters back off until `due`."""
        job = job or JobLimits()
        job.rate_limited += 1
        self.back_off(job, due)
        return job
