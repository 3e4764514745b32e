"""`RedisInspector`: the operator's read model on Redis, each read one plan (`plans.py`).

The reads are the functions of ``lua/inspect.lua`` (read-only, FCALL_RO: a replica may serve
them), each bounded whatever the size of the queue, plus the registry of queue names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from errands.broker.fleet import merge_fleet
from errands.broker.reading import (
    JobFacts,
    check_limit,
    dead_cursor,
    first_known,
    job_detail,
    read_dead_cursor,
    worker_summary,
)
from errands.broker.redis.calls import Call
from errands.broker.redis.keys import QueueKeys, queues_registry_key
from errands.broker.redis.library import function_name
from errands.broker.redis.plans import Command, Plan
from errands.broker.redis.series import view_call
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
    from errands.broker.redis.broker import RedisBroker

__all__ = ["RedisInspector"]

T = TypeVar("T")


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float | None:
    return None if value is None or value is False else float(value)


def _flat_pairs(flat: Sequence[Any]) -> list[tuple[Any, Any]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


class RedisInspector:
    """The `Inspector` of a `RedisBroker` (``broker.inspector``).

    Args:
        broker: the broker whose queues it reads.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker

    # Calls --------------------------------------------------------------------------------

    def _queue_view(self, keys: QueueKeys) -> Call[QueueSummary]:
        silence = self._broker.settings.worker_silence_ms

        def parse(reply: list[Any]) -> QueueSummary:
            ready, delayed, active, dead, paused, stats, oldest, consumers, now = reply
            oldest_s = _number(oldest)
            return QueueSummary(
                name=keys.queue,
                ready=int(ready),
                delayed=int(delayed),
                active=int(active),
                dead=int(dead),
                paused=bool(paused),
                oldest_ready_age_s=None if oldest_s is None else max(0.0, now / 1000 - oldest_s),
                consumers=int(consumers),
                stats={_s(k): int(v) for k, v in _flat_pairs(stats)},
            )

        return Call(function_name("queue_view"), keys.all, (silence,), parse, read_only=True)

    def _job_view(self, keys: QueueKeys, job_id: str) -> Call[JobDetail | None]:
        def parse(reply: list[Any]) -> JobDetail | None:
            state, outcome, attempts, meta, payload, history, due, lease, died, progress = reply
            try:
                fields = msgspec.msgpack.decode(meta) if meta else None
            except msgspec.DecodeError:
                fields = None
            facts = JobFacts(
                state=_s(state),
                outcome=outcome or None,
                attempts=int(attempts),
                meta=fields if isinstance(fields, dict) else None,
                payload=payload or None,
                history=history or None,
                due_ms=_number(due),
                lease_ms=_number(lease),
                died_ms=_number(died),
                progress=progress or None,
            )
            return job_detail(keys.queue, job_id, facts)

        return Call(function_name("job_view"), keys.all, (job_id,), parse, read_only=True)

    def _dead_page(
        self,
        keys: QueueKeys,
        where: DeadFilter,
        newest_first: bool,
        cursor: str | None,
        limit: int,
    ) -> Call[Page[DeadJob]]:
        since = "-inf" if where.since is None else str(int(where.since * 1000))
        until = "+inf" if where.until is None else f"({int(where.until * 1000)}"
        if cursor is None:
            start, skip = (until, 0) if newest_first else (since, 0)
        else:
            score, skip = read_dead_cursor(cursor)
            start = str(score)
        end = since if newest_first else until
        filtered = bool(where.task or where.error_type)
        args = (
            "desc" if newest_first else "asc",
            start,
            skip,
            end,
            limit,
            DEAD_SCAN if filtered else limit,
            where.task or "",
            where.error_type or "",
        )

        def parse(reply: list[Any]) -> Page[DeadJob]:
            entries, next_score, seen = reply
            items = [
                DeadJob(
                    id=_s(entries[i]),
                    queue=keys.queue,
                    task=_s(entries[i + 2]),
                    died_at=float(entries[i + 1]) / 1000,
                    attempts=int(entries[i + 3]),
                    error=ErrorInfo(_s(entries[i + 4]), _s(entries[i + 5]))
                    if entries[i + 4]
                    else None,
                )
                for i in range(0, len(entries), 6)
            ]
            more = next_score is not None and next_score is not False
            return Page(items, dead_cursor(float(next_score), int(seen)) if more else None)

        return Call(function_name("dead_page"), keys.all, args, parse, read_only=True)

    def _workers_view(
        self, keys: QueueKeys, after: str | None, limit: int
    ) -> Call[Page[WorkerSummary]]:
        silence = self._broker.settings.worker_silence_ms

        def parse(reply: list[Any]) -> Page[WorkerSummary]:
            flat, more, _now = reply
            items = [worker_summary(_s(w), info) for w, info in _flat_pairs(flat)]
            return Page(items, items[-1].id if more and items else None)

        args = (silence, after or "", limit)
        return Call(function_name("workers_view"), keys.all, args, parse, read_only=True)

    def _queue_names(self) -> Command[list[str]]:
        def parse(reply: Any) -> list[str]:
            return sorted(_s(m) for m in reply or ())

        key = queues_registry_key(self._broker.namespace)
        return Command(("SMEMBERS", key), parse, "list queues")

    def _limits_view(
        self, keys: QueueKeys, limiter: Limiter, cursor: str | None, limit: int
    ) -> Call[LimiterState]:
        def parse(reply: list[Any]) -> LimiterState:
            rows, next_cursor, now = reply
            states = [
                key_state(
                    limiter,
                    _s(rows[i]),
                    float(rows[i + 1]),
                    float(rows[i + 2]),
                    float(now),
                    int(rows[i + 3]),
                    int(rows[i + 4]),
                )
                for i in range(0, len(rows), 5)
            ]
            more = _s(next_cursor) != "0"
            return limiter_state(limiter, keys.queue, states, _s(next_cursor) if more else None)

        keyed = 1 if limiter.key is not None else 0
        args = (limiter.name, keyed, cursor or "0", limit)
        return Call(function_name("limits_view"), keys.all, args, parse, read_only=True)

    # Plans --------------------------------------------------------------------------------

    def _queues(self, after: str | None, limit: int) -> Plan[Page[QueueSummary]]:
        check_limit(limit)
        [names] = yield [self._queue_names()]
        later = [n for n in names if after is None or n > after]
        page = later[:limit]
        summaries = (yield [self._queue_view(self._broker.keys(n)) for n in page]) if page else []
        return Page(summaries, page[-1] if len(later) > limit else None)

    def _fleet(self, after: str | None, limit: int) -> Plan[Page[WorkerSummary]]:
        check_limit(limit)
        [names] = yield [self._queue_names()]
        if not names:
            return Page([])
        pages = yield [self._workers_view(self._broker.keys(n), after, limit) for n in names]
        return merge_fleet(pages, limit)

    def _many(self, reads: list[Call[T]]) -> Plan[list[T]]:
        values = (yield reads) if reads else []
        return list(values)

    def _one(self, read: Call[T]) -> Plan[T]:
        [value] = yield [read]
        return value  # type: ignore[no-any-return]

    def _dead(
        self,
        queue: str,
        where: DeadFilter | None,
        newest_first: bool,
        cursor: str | None,
        limit: int,
    ) -> Plan[Page[DeadJob]]:
        check_limit(limit)
        keys = self._broker.keys(queue)
        return self._one(self._dead_page(keys, where or DeadFilter(), newest_first, cursor, limit))

    # The Inspector protocol ---------------------------------------------------------------

    def queues(self, *, after: str | None = None, limit: int = 100) -> Page[QueueSummary]:
        """Every queue producers or workers have used, by name; see `Inspector.queues`."""
        return self._broker.run_plan(self._queues(after, limit))

    async def aqueues(self, *, after: str | None = None, limit: int = 100) -> Page[QueueSummary]:
        """Async twin of `queues`."""
        return await self._broker.arun_plan(self._queues(after, limit))

    def queue(self, name: str) -> QueueSummary:
        """One queue at a glance."""
        return self._broker.run_plan(self._one(self._queue_view(self._broker.keys(name))))

    async def aqueue(self, name: str) -> QueueSummary:
        """Async twin of `queue`."""
        return await self._broker.arun_plan(self._one(self._queue_view(self._broker.keys(name))))

    def job(self, queue: str, job_id: str) -> JobDetail | None:
        """A job's whole record; see `Inspector.job`."""
        return self._broker.run_plan(self._one(self._job_view(self._broker.keys(queue), job_id)))

    async def ajob(self, queue: str, job_id: str) -> JobDetail | None:
        """Async twin of `job`."""
        plan = self._one(self._job_view(self._broker.keys(queue), job_id))
        return await self._broker.arun_plan(plan)

    def jobs(self, queue: str, job_ids: Sequence[str]) -> list[JobDetail | None]:
        """`job` of each of `job_ids`, in one round trip; see `Inspector.jobs`."""
        keys = self._broker.keys(queue)
        return self._broker.run_plan(self._many([self._job_view(keys, i) for i in job_ids]))

    async def ajobs(self, queue: str, job_ids: Sequence[str]) -> list[JobDetail | None]:
        """Async twin of `jobs`."""
        keys = self._broker.keys(queue)
        return await self._broker.arun_plan(self._many([self._job_view(keys, i) for i in job_ids]))

    def _views_in(self, queues: Sequence[str], job_id: str) -> Plan[list[JobDetail | None]]:
        return self._many([self._job_view(self._broker.keys(q), job_id) for q in queues])

    def find_job(self, queues: Sequence[str], job_id: str) -> JobDetail | None:
        """See `Inspector.find_job`."""
        return first_known(self._broker.run_plan(self._views_in(queues, job_id)))

    async def afind_job(self, queues: Sequence[str], job_id: str) -> JobDetail | None:
        """Async twin of `find_job`."""
        return first_known(await self._broker.arun_plan(self._views_in(queues, job_id)))

    def workers(
        self, queue: str, *, after: str | None = None, limit: int = 100
    ) -> Page[WorkerSummary]:
        """The live workers serving `queue`; see `Inspector.workers`."""
        read = self._workers_view(self._broker.keys(queue), after, check_limit(limit))
        return self._broker.run_plan(self._one(read))

    async def aworkers(
        self, queue: str, *, after: str | None = None, limit: int = 100
    ) -> Page[WorkerSummary]:
        """Async twin of `workers`."""
        read = self._workers_view(self._broker.keys(queue), after, check_limit(limit))
        return await self._broker.arun_plan(self._one(read))

    def fleet(self, *, after: str | None = None, limit: int = 100) -> Page[WorkerSummary]:
        """Every live worker, whatever its queues; see `Inspector.fleet`."""
        return self._broker.run_plan(self._fleet(after, limit))

    async def afleet(self, *, after: str | None = None, limit: int = 100) -> Page[WorkerSummary]:
        """Async twin of `fleet`."""
        return await self._broker.arun_plan(self._fleet(after, limit))

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
        return self._broker.run_plan(self._dead(queue, where, newest_first, cursor, limit))

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
        return await self._broker.arun_plan(self._dead(queue, where, newest_first, cursor, limit))

    def limiter(
        self, queue: str, limiter: Limiter, *, cursor: str | None = None, limit: int = 100
    ) -> LimiterState:
        """Where `limiter` stands for `queue`'s jobs; see `Inspector.limiter`."""
        read = self._limits_view(self._broker.keys(queue), limiter, cursor, check_limit(limit))
        return self._broker.run_plan(self._one(read))

    async def alimiter(
        self, queue: str, limiter: Limiter, *, cursor: str | None = None, limit: int = 100
    ) -> LimiterState:
        """Async twin of `limiter`."""
        read = self._limits_view(self._broker.keys(queue), limiter, cursor, check_limit(limit))
        return await self._broker.arun_plan(self._one(read))

    def throughput(
        self, queue: str, minutes: int = 60, *, until: float | None = None
    ) -> list[ThroughputPoint]:
        """The queue's counts per minute; see `Inspector.throughput`."""
        self._broker.keys(queue)  # checks the name, as every other read does
        return self._broker.run(view_call(self._broker.namespace, queue, minutes, until))

    async def athroughput(
        self, queue: str, minutes: int = 60, *, until: float | None = None
    ) -> list[ThroughputPoint]:
        """Async twin of `throughput`."""
        self._broker.keys(queue)
        return await self._broker.arun(view_call(self._broker.namespace, queue, minutes, until))
