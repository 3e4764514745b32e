"""`MemoryInspector`: the operator's read model of a `MemoryBroker`, as ``inspect.lua`` reads Redis.

Each view reads one `QueueState` under the broker's lock and answers what the Lua function of
the same name answers, pages and cursors included, so an inspector test passes on both brokers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from errands.broker import memory_series
from errands.broker.fleet import merge_fleet
from errands.broker.memory_limits import LimitRecord
from errands.broker.memory_records import worker_live
from errands.broker.memory_state import PRIORITY_SPAN, JobMeta, QueueState
from errands.broker.reading import (
    JobFacts,
    check_limit,
    dead_cursor,
    error_matches,
    first_known,
    job_detail,
    payload_head,
    read_dead_cursor,
    worker_summary,
)
from errands.broker.series import ThroughputPoint
from errands.broker.views import (
    DEAD_SCAN,
    DeadFilter,
    DeadJob,
    JobDetail,
    LimiterState,
    Page,
    QueueSummary,
    WorkerSummary,
)
from errands.limits import Limiter, key_state, limiter_state
from errands.result import ErrorInfo

if TYPE_CHECKING:
    from errands.broker.memory import MemoryBroker

__all__ = ["MemoryInspector"]

T = TypeVar("T")


def _oldest_ready(q: QueueState) -> float | None:
    """The enqueue time of the oldest first-of-its-priority ready job (inspect.lua)."""
    firsts: dict[int, tuple[int, str]] = {}
    for member, score in q.ready.lowest(len(q.ready)):
        firsts.setdefault(score // PRIORITY_SPAN, (score, member))
    times = [payload_head(q.jobs.get(member))[1] for _, member in firsts.values()]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _live_workers(q: QueueState, now: int, silence_ms: int) -> list[tuple[str, bytes]]:
    return sorted((w, info) for w, info in q.workers.items() if worker_live(info, now, silence_ms))


def _queue_summary(q: QueueState, now: int, silence_ms: int) -> QueueSummary:
    oldest = _oldest_ready(q)
    return QueueSummary(
        name=q.name,
        ready=len(q.ready),
        delayed=len(q.delayed),
        active=len(q.active),
        dead=len(q.dead),
        paused=q.paused,
        oldest_ready_age_s=None if oldest is None else max(0.0, now / 1000 - oldest),
        consumers=len(_live_workers(q, now, silence_ms)),
        stats=dict(q.stats),
    )


def _meta_fields(m: JobMeta) -> dict[str, object]:
    fields: dict[str, object] = {"m": m.max_attempts, "p": m.priority, "st": m.stalls}
    if m.worker is not None:
        fields["w"] = m.worker
    if m.fetched_ms is not None:
        fields["f"] = m.fetched_ms
    if m.idempotency_key is not None:
        fields["ik"] = m.idempotency_key
    if m.chord is not None:
        fields["ch"] = m.chord[0]
    return fields


def _job_detail(q: QueueState, now: int, job_id: str) -> JobDetail | None:
    snapshot = q.result(now, job_id)
    m = q.meta.get(job_id)
    facts = JobFacts(
        state=snapshot.state,
        outcome=snapshot.outcome,
        attempts=snapshot.attempts,
        meta=_meta_fields(m) if m is not None else None,
        payload=q.jobs.get(job_id),
        history=q.history.get(job_id),
        due_ms=q.delayed.score(job_id),
        lease_ms=q.active.score(job_id),
        died_ms=q.dead.score(job_id),
        progress=q.progress.get(job_id),
    )
    return job_detail(q.name, job_id, facts)


def _dead_job(q: QueueState, job_id: str, died: int) -> DeadJob:
    m = q.meta.get(job_id)
    task = (m.task if m else None) or payload_head(q.jobs.get(job_id))[0] or "?"
    kind = m.error_type if m else None
    error = ErrorInfo(kind, (m.error_message if m else None) or "") if kind else None
    return DeadJob(job_id, q.name, task, died / 1000, m.attempts if m else 0, error)


def _dead_page(
    q: QueueState,
    where: DeadFilter,
    newest_first: bool,
    cursor: str | None,
    limit: int,
) -> Page[DeadJob]:
    since = None if where.since is None else int(where.since * 1000)
    until = None if where.until is None else int(where.until * 1000)
    entries = [
        (score, member)
        for member, score in q.dead.lowest(len(q.dead))
        if (since is None or score >= since) and (until is None or score < until)
    ]
    if newest_first:
        entries.reverse()
    skip, start = 0, None
    if cursor is not None:
        start, skip = read_dead_cursor(cursor)
        entries = [e for e in entries if (e[0] <= start if newest_first else e[0] >= start)]
    scan = DEAD_SCAN if (where.task or where.error_type) else limit
    window = entries[skip : skip + scan]
    items: list[DeadJob] = []
    # Where the next page starts: the last time of death looked at, and how many entries at
    # that time were looked at (the next page skips them), as dead_page in inspect.lua.
    last, at_last, looked = start, skip, 0
    for score, member in window:
        looked += 1
        last, at_last = (score, at_last + 1) if score == last else (score, 1)
        job = _dead_job(q, member, score)
        kind = job.error.type if job.error else ""
        if (not where.task or job.task == where.task) and error_matches(kind, where.error_type):
            items.append(job)
            if len(items) >= limit:
                break
    if (len(items) < limit and looked < scan) or not window or last is None:
        return Page(items, None)
    return Page(items, dead_cursor(last, at_last))


def _limiter_state(
    q: QueueState, now: int, limiter: Limiter, cursor: str | None, limit: int
) -> LimiterState:
    """The records of `limiter`, by name (the cursor is the last name of the page before)."""
    prefix = f"{limiter.name}|"
    names = sorted(r for r in q.limits.records if r.startswith(prefix))
    if limiter.key is None:
        names = [prefix]
    later = [n for n in names if cursor is None or n > cursor][:limit]
    keys = []
    for rid in later:
        record = q.limits.records.get(rid) or LimitRecord()
        running = sum(1 for h in record.holders if h in q.active)
        parked = len(q.limits.waiters.get(rid, ()))
        keys.append(key_state(limiter, rid, record.t, record.bo, now, running, parked))
    more = limiter.key is not None and len(later) == limit and later[-1] != names[-1]
    return limiter_state(limiter, q.name, keys, later[-1] if more else None)


def _workers_page(
    q: QueueState, now: int, silence_ms: int, after: str | None, limit: int
) -> Page[WorkerSummary]:
    later = [(w, info) for w, info in _live_workers(q, now, silence_ms) if not after or w > after]
    items = [worker_summary(w, info) for w, info in later[:limit]]
    return Page(items, items[-1].id if len(later) > limit else None)


class MemoryInspector:
    """The `Inspector` of a `MemoryBroker` (``broker.inspector``); async twins answer at once.

    Args:
        broker: the broker whose queues it reads.
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    def _read(self, queue: str, view: Callable[[QueueState, int], T]) -> T:
        return self._broker.read(queue, view)

    def queues(self, *, after: str | None = None, limit: int = 100) -> Page[QueueSummary]:
        """Every queue producers or workers have used, by name; see `Inspector.queues`."""
        check_limit(limit)
        later = [n for n in self._broker.queue_names() if after is None or n > after]
        items = [self.queue(name) for name in later[:limit]]
        return Page(items, items[-1].name if len(later) > limit else None)

    async def aqueues(self, *, after: str | None = None, limit: int = 100) -> Page[QueueSummary]:
        """Async twin of `queues`."""
        return self.queues(after=after, limit=limit)

    def queue(self, name: str) -> QueueSummary:
        """One queue at a glance."""
        silence = self._broker.settings.worker_silence_ms
        return self._read(name, lambda q, now: _queue_summary(q, now, silence))

    async def aqueue(self, name: str) -> QueueSummary:
        """Async twin of `queue`."""
        return self.queue(name)

    def job(self, queue: str, job_id: str) -> JobDetail | None:
        """A job's whole record; see `Inspector.job`."""
        return self._read(queue, lambda q, now: _job_detail(q, now, job_id))

    async def ajob(self, queue: str, job_id: str) -> JobDetail | None:
        """Async twin of `job`."""
        return self.job(queue, job_id)

    def jobs(self, queue: str, job_ids: Sequence[str]) -> list[JobDetail | None]:
        """`job` of each of `job_ids`, in their order; see `Inspector.jobs`."""
        return self._read(queue, lambda q, now: [_job_detail(q, now, i) for i in job_ids])

    async def ajobs(self, queue: str, job_ids: Sequence[str]) -> list[JobDetail | None]:
        """Async twin of `jobs`."""
        return self.jobs(queue, job_ids)

    def find_job(self, queues: Sequence[str], job_id: str) -> JobDetail | None:
        """See `Inspector.find_job`."""
        return first_known([self.job(q, job_id) for q in queues])

    async def afind_job(self, queues: Sequence[str], job_id: str) -> JobDetail | None:
        """Async twin of `find_job`."""
        return self.find_job(queues, job_id)

    def workers(
        self, queue: str, *, after: str | None = None, limit: int = 100
    ) -> Page[WorkerSummary]:
        """The live workers serving `queue`; see `Inspector.workers`."""
        check_limit(limit)
        silence = self._broker.settings.worker_silence_ms
        return self._read(queue, lambda q, now: _workers_page(q, now, silence, after, limit))

    async def aworkers(
        self, queue: str, *, after: str | None = None, limit: int = 100
    ) -> Page[WorkerSummary]:
        """Async twin of `workers`."""
        return self.workers(queue, after=after, limit=limit)

    def fleet(self, *, after: str | None = None, limit: int = 100) -> Page[WorkerSummary]:
        """Every live worker, whatever its queues; see `Inspector.fleet`."""
        check_limit(limit)
        names = self._broker.queue_names()
        return merge_fleet((self.workers(n, after=after, limit=limit) for n in names), limit)

    async def afleet(self, *, after: str | None = None, limit: int = 100) -> Page[WorkerSummary]:
        """Async twin of `fleet`."""
        return self.fleet(after=after, limit=limit)

    def dead(
        self,
        queue: str,
        *,
        where: DeadFilter | None = None,
        newest_first: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[DeadJob]:
        """A page of dead jobs; see `Inspector.dead`."""
        check_limit(limit)
        return self._read(
            queue, lambda q, _: _dead_page(q, where or DeadFilter(), newest_first, cursor, limit)
        )

    async def adead(
        self,
        queue: str,
        *,
        where: DeadFilter | None = None,
        newest_first: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[DeadJob]:
        """Async twin of `dead`."""
        return self.dead(queue, where=where, newest_first=newest_first, cursor=cursor, limit=limit)

    def limiter(
        self, queue: str, limiter: Limiter, *, cursor: str | None = None, limit: int = 100
    ) -> LimiterState:
        """Where `limiter` stands for `queue`'s jobs; see `Inspector.limiter`."""
        check_limit(limit)
        return self._read(queue, lambda q, now: _limiter_state(q, now, limiter, cursor, limit))

    async def alimiter(
        self, queue: str, limiter: Limiter, *, cursor: str | None = None, limit: int = 100
    ) -> LimiterState:
        """Async twin of `limiter`."""
        return self.limiter(queue, limiter, cursor=cursor, limit=limit)

    def throughput(
        self, queue: str, minutes: int = 60, *, until: float | None = None
    ) -> list[ThroughputPoint]:
        """The queue's counts per minute; see `Inspector.throughput`."""

        def points(samples: Mapping[int, bytes], now_ms: int) -> list[ThroughputPoint]:
            at = now_ms if until is None else round(until * 1000)
            return memory_series.view(samples, at, minutes)

        return self._broker.read_series(queue, points)

    async def athroughput(
        self, queue: str, minutes: int = 60, *, until: float | None = None
    ) -> list[ThroughputPoint]:
        """Async twin of `throughput`."""
        return self.throughput(queue, minutes, until=until)
