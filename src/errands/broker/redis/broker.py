"""`RedisBroker`: executes the calls of `calls.py` on Redis, blocking or async.

Connections open on first use, never in the constructor. The library is loaded with
``FUNCTION LOAD REPLACE`` the first time a call finds it missing, then the call is sent again
(nothing ran, so that is safe). Whatever goes wrong on the way reaches the caller as one errands
error (`errands.broker.redis.faults`), never as a redis-py exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis
from redis.exceptions import RedisError, ResponseError

from errands.broker.redis import calls, progress_calls
from errands.broker.redis.chord_notes import deliver_chord_failures
from errands.broker.redis.direct import Command, LoopConnections, ThreadConnections
from errands.broker.redis.direct_line import RedisDirectLine, open_line
from errands.broker.redis.faults import is_missing_library, translate
from errands.broker.redis.inspector import RedisInspector
from errands.broker.redis.keys import QueueKeys, check_queue_name, queues_registry_key
from errands.broker.redis.library import library_source
from errands.broker.redis.operations import RedisOperations
from errands.broker.redis.plans import Plan, Read
from errands.broker.redis.schedules import RedisSchedules
from errands.broker.redis.waits import ResultWaits
from errands.broker.settings import BrokerSettings
from errands.broker.types import (
    AckCode,
    Enqueued,
    Fetched,
    HeartbeatReply,
    JobSnapshot,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    ProgressReport,
)
from errands.broker.urls import redact
from errands.errors import BrokerError
from errands.progress import Progress

__all__ = ["ENQUEUE_CHUNK", "RedisBroker", "redact"]

T = TypeVar("T")

# Blocking reads (BZPOPMIN, pub/sub waits) stay well under this, so a dead connection is noticed.
_SOCKET_TIMEOUT_S = 30.0
_MAX_BLOCK_S = 5.0
#: Jobs per enqueue call. Redis runs one call at a time and serves the workers too, so a call
#: must hold it a couple of milliseconds at most. It must stay under the library's MAX_BATCH
#: (1,000). The measurements: docs/performance.md.
ENQUEUE_CHUNK = 200


def _parsed(reads: Sequence[Read], replies: list[Any], url: str) -> list[Any]:
    """Each reply parsed by its read; an error reply raises the errands error for it."""
    for read, reply in zip(reads, replies, strict=True):
        if isinstance(reply, ResponseError):
            raise translate(reply, url, read.name)
    return [read.parse(reply) for read, reply in zip(reads, replies, strict=True)]


@dataclass(frozen=True, slots=True)
class _LoopClient:
    """The async client of one event loop, and the connections its calls keep."""

    client: aredis.Redis
    direct: LoopConnections


class RedisBroker(RedisOperations):
    """A broker on Redis 7+ (or Valkey 7.2+), every state change one Redis Function call.

    Args:
        url: a redis:// or rediss:// or unix:// URL.
        namespace: the first part of every key, so several apps can share one database.
        settings: bounds enforced in Redis (dead-letter cap, per-call limits).
    """

    def __init__(
        self, url: str, *, namespace: str = "errands", settings: BrokerSettings | None = None
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.settings = settings or BrokerSettings()
        self._sync: redis.Redis | None = None
        self._direct: ThreadConnections | None = None
        # Async connections belong to the loop that opened them; a process may run several
        # loops on one broker (the in-process pools run tasks on a loop beside the worker's).
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._waits = ResultWaits(self)
        self._inspector: RedisInspector | None = None
        self._schedules: RedisSchedules | None = None

    def __repr__(self) -> str:
        return f"RedisBroker({redact(self.url)!r}, namespace={self.namespace!r})"

    # Plumbing -------------------------------------------------------------------------------

    def keys(self, queue: str) -> QueueKeys:
        """The keys of `queue` (cached)."""
        found = self._keys.get(queue)
        if found is None:
            found = self._keys[queue] = QueueKeys(self.namespace, check_queue_name(queue))
        return found

    @property
    def client(self) -> redis.Redis:
        """The blocking client, created on first use."""
        if self._sync is None:
            self._sync = redis.Redis.from_url(
                self.url, socket_timeout=_SOCKET_TIMEOUT_S, socket_connect_timeout=5.0
            )
        return self._sync

    @property
    def direct(self) -> ThreadConnections:
        """The blocking calls' connections: one per thread, kept between calls."""
        if self._direct is None:
            self._direct = ThreadConnections(self.client.connection_pool)
        return self._direct

    def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        found = self._loops.get(loop)
        if found is None:
            client = aredis.Redis.from_url(
                self.url, socket_timeout=_SOCKET_TIMEOUT_S, socket_connect_timeout=5.0
            )
            found = self._loops[loop] = _LoopClient(client, LoopConnections(client.connection_pool))
        return found

    @property
    def aclient(self) -> aredis.Redis:
        """The async client of the running event loop, created on first use."""
        return self._loop_client().client

    @property
    def adirect(self) -> LoopConnections:
        """The async calls' connections, of the running event loop."""
        return self._loop_client().direct

    @contextlib.contextmanager
    def _faults(self, call: str = "") -> Iterator[None]:
        """Turn whatever redis-py raises inside into the errands error for it."""
        try:
            yield
        except (RedisError, OSError) as error:
            raise translate(error, self.url, call) from None

    async def _acall(self, *commands: Command, repeatable: bool = True) -> list[Any]:
        return await self.adirect.call_many(commands, repeatable=repeatable)

    def load_library(self) -> None:
        """Load (or replace) the errands Functions library on the server."""
        with self._faults("load the errands library"):
            self.client.execute_command("FUNCTION", "LOAD", "REPLACE", library_source())

    async def aload_library(self) -> None:
        """Async twin of `load_library`."""
        with self._faults("load the errands library"):
            await self.aclient.execute_command("FUNCTION", "LOAD", "REPLACE", library_source())

    def run(self, call: calls.Call[T]) -> T:
        """Execute one call, loading the library first if the server lacks it."""
        # A plain try (free when nothing is raised), not `_faults`: this is every call's path.
        try:
            try:
                reply = self.direct.call(call.packed())
            except ResponseError as error:
                if not is_missing_library(error):
                    raise
                self.load_library()
                reply = self.direct.call(call.packed())
        except (RedisError, OSError) as error:
            raise translate(error, self.url, call.name) from None
        return call.parse(reply)

    async def arun(self, call: calls.Call[T]) -> T:
        """Async twin of `run`."""
        try:
            (reply,) = await self._acall(call.packed(), repeatable=call.repeatable)
            if isinstance(reply, ResponseError):
                if not is_missing_library(reply):
                    raise reply
                await self.aload_library()
                (reply,) = await self._acall(call.packed(), repeatable=call.repeatable)
                if isinstance(reply, ResponseError):
                    raise reply
        except (RedisError, OSError) as error:
            raise translate(error, self.url, call.name) from None
        return call.parse(reply)

    def run_plan(self, plan: Plan[T]) -> T:
        """Drive a read plan (`errands.broker.redis.inspector`), each step one round trip."""
        try:
            step = next(plan)
            while True:
                step = plan.send(self._run_all(step))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def arun_plan(self, plan: Plan[T]) -> T:
        """Async twin of `run_plan`."""
        try:
            step = next(plan)
            while True:
                step = plan.send(await self._arun_all(step))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _run_all(self, reads: Sequence[Read]) -> list[Any]:
        """Send `reads` together and parse their replies; load the library if it is missing.

        Nothing ran then, and what a plan sends is safe to send again (see `plans`).
        """
        name = reads[0].name if reads else ""
        try:
            replies = self.direct.call_many([r.packed() for r in reads])
            if any(is_missing_library(r) for r in replies):
                self.load_library()
                replies = self.direct.call_many([r.packed() for r in reads])
        except (RedisError, OSError) as error:
            raise translate(error, self.url, name) from None
        return _parsed(reads, replies, self.url)

    async def _arun_all(self, reads: Sequence[Read]) -> list[Any]:
        """Async twin of `_run_all`."""
        name = reads[0].name if reads else ""
        try:
            replies = await self._acall(*(r.packed() for r in reads))
            if any(is_missing_library(r) for r in replies):
                await self.aload_library()
                replies = await self._acall(*(r.packed() for r in reads))
        except (RedisError, OSError) as error:
            raise translate(error, self.url, name) from None
        return _parsed(reads, replies, self.url)

    @property
    def inspector(self) -> RedisInspector:
        """The operator's read model of this broker (`errands.broker.operator.Inspector`)."""
        if self._inspector is None:
            self._inspector = RedisInspector(self)
        return self._inspector

    def _register(self, queue: str) -> None:
        if queue not in self._registered:
            with self._faults("register the queue"):
                self.client.sadd(queues_registry_key(self.namespace), queue)
            self._registered.add(queue)

    async def _aregister(self, queue: str) -> None:
        if queue not in self._registered:
            with self._faults("register the queue"):
                await self.aclient.sadd(queues_registry_key(self.namespace), queue)
            self._registered.add(queue)

    # Producer side ----------------------------------------------------------------------------

    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Add jobs to `queue`; see `Broker.enqueue`. Many jobs go in calls of `ENQUEUE_CHUNK`.

        Raises:
            BrokerError: Redis refused a call; calls before it (and after it) may have been
                taken: each call is all or nothing. `error.enqueued` lists their answers.
        """
        if len(jobs) <= ENQUEUE_CHUNK:
            result = self.run(
                calls.enqueue(self.keys(queue), jobs, events_maxlen=self.settings.events_maxlen)
            )
            self._register(queue)
            return result
        chunks = [jobs[i : i + ENQUEUE_CHUNK] for i in range(0, len(jobs), ENQUEUE_CHUNK)]
        answers = self.enqueue_batches((queue, chunk) for chunk in chunks)
        refused = [a for a in answers if isinstance(a, BrokerError)]
        if refused:
            refused[0].enqueued = [e for a in answers if not isinstance(a, BrokerError) for e in a]
            raise refused[0]
        return [e for a in answers if not isinstance(a, BrokerError) for e in a]

    def enqueue_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued] | BrokerError]:
        """Enqueue batches (queue, jobs), all sent on one connection before any reply is read.

        One round trip for all of them, and Redis runs each while the next is still on its way.
        Each batch is one call, all or nothing: its answers, or the error that refused it.

        Raises:
            BrokerUnavailable: the connection failed; which batches Redis took is unknown
                (each is all or nothing, and sending them again adds none twice).
        """
        sent: list[tuple[str, Sequence[NewJob], calls.Call[list[Enqueued]]]] = []

        def commands() -> Iterator[bytes]:
            for queue, jobs in batches:
                if len(jobs) > ENQUEUE_CHUNK:
                    raise ValueError(f"a batch holds at most {ENQUEUE_CHUNK} jobs")
                call = calls.enqueue(
                    self.keys(queue), jobs, events_maxlen=self.settings.events_maxlen
                )
                sent.append((queue, jobs, call))
                yield call.packed()

        with self._faults("enqueue"):
            replies = self.direct.call_many(commands())
        results: list[list[Enqueued] | BrokerError] = []
        for (queue, jobs, call), reply in zip(sent, replies, strict=True):
            if not isinstance(reply, ResponseError):
                results.append(call.parse(reply))
                self._register(queue)
            elif is_missing_library(reply):
                results.append(self.enqueue(queue, jobs))  # nothing ran: load it, send again
            else:
                results.append(translate(reply, self.url, "enqueue"))
        return results

    async def aenqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Async twin of `enqueue` (calls of `ENQUEUE_CHUNK` jobs, one after another)."""
        return await self._aenqueue(queue, jobs, continues=False)

    async def acontinue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """The next steps of finished jobs, which a full Redis still takes (see `Broker`)."""
        return await self._aenqueue(queue, jobs, continues=True)

    async def _aenqueue(
        self, queue: str, jobs: Sequence[NewJob], *, continues: bool
    ) -> list[Enqueued]:
        taken: list[Enqueued] = []
        for start in range(0, len(jobs), ENQUEUE_CHUNK):
            chunk = jobs[start : start + ENQUEUE_CHUNK]
            try:
                answers = await self.arun(
                    calls.enqueue(
                        self.keys(queue),
                        chunk,
                        continues=continues,
                        events_maxlen=self.settings.events_maxlen,
                    )
                )
            except BrokerError as error:
                error.enqueued = taken
                raise
            taken.extend(answers)
        await self._aregister(queue)
        return taken

    def job_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Read a job's state and, once finished, its outcome."""
        return self.run(calls.result(self.keys(queue), job_id))

    async def ajob_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Async twin of `job_state`."""
        return await self.arun(calls.result(self.keys(queue), job_id))

    async def ajob_states(self, jobs: Sequence[tuple[str, str]]) -> list[JobSnapshot]:
        """`ajob_state` of many jobs, pipelined in one round trip."""
        reads = [calls.result(self.keys(queue), job_id) for queue, job_id in jobs]
        return await self._arun_all(reads) if reads else []

    def job_progress(self, queue: str, job_id: str) -> Progress | None:
        """What the job last reported of its progress; see `ResultStore.job_progress`."""
        return self.run(progress_calls.progress_of(self.keys(queue), job_id))

    async def ajob_progress(self, queue: str, job_id: str) -> Progress | None:
        """Async twin of `job_progress`."""
        return await self.arun(progress_calls.progress_of(self.keys(queue), job_id))

    def wait_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Block until the job finishes or `timeout_s` passes (see `ResultWaits`)."""
        with self._faults("wait for a result"):
            return self._waits.wait(queue, job_id, timeout_s)

    async def await_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Async twin of `wait_result`."""
        with self._faults("wait for a result"):
            return await self._waits.await_(queue, job_id, timeout_s)

    def close(self) -> None:
        """Close the blocking connections."""
        self._waits.close()
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def deliver_chord_failures(self, queue: str) -> int:
        """Blocking twin of `adeliver_chord_failures` (used before a redrive)."""
        return self.run_plan(deliver_chord_failures(self, queue))

    async def adeliver_chord_failures(self, queue: str) -> int:
        """Fail the chords of `queue`'s dead members; see `Broker.adeliver_chord_failures`."""
        return await self.arun_plan(deliver_chord_failures(self, queue))

    # Worker side ------------------------------------------------------------------------------

    async def fetch(
        self, queue: str, n: int, lease_ms: int, worker_id: str, *, limited: int | None = None
    ) -> Fetched:
        """Lease up to `n` jobs; see `Broker.fetch`."""
        call = calls.fetch(self.keys(queue), self.settings, n, lease_ms, worker_id, limited)
        return await self.arun(call)

    async def ack(self, queue: str, outcomes: Sequence[Outcome]) -> list[AckCode]:
        """Settle finished jobs; see `Broker.ack`."""
        return await self.arun(calls.ack(self.keys(queue), self.settings, outcomes))

    async def ack_and_fetch(
        self,
        queue: str,
        outcomes: Sequence[Outcome],
        n: int,
        lease_ms: int,
        worker_id: str,
        *,
        limited: int | None = None,
    ) -> tuple[list[AckCode] | BrokerError, Fetched]:
        """Ack then fetch in one round trip; see `Broker.ack_and_fetch`."""
        keys = self.keys(queue)
        ack = calls.ack(keys, self.settings, outcomes)
        fetch = calls.fetch(keys, self.settings, n, lease_ms, worker_id, limited)
        try:
            replies = await self._acall(ack.packed(), fetch.packed(), repeatable=False)
        except (RedisError, OSError) as error:
            raise translate(error, self.url, "ack and fetch") from None
        acked, fetched = replies
        if is_missing_library(acked) or is_missing_library(fetched):
            # Neither call ran: load the library and send them again, one after the other.
            await self.aload_library()
            return await self.arun(ack), await self.arun(fetch)
        if isinstance(fetched, Exception):
            raise translate(fetched, self.url, fetch.name)
        codes = translate(acked, self.url, ack.name) if isinstance(acked, Exception) else None
        return codes or ack.parse(acked), fetch.parse(fetched)

    async def heartbeat(
        self,
        queue: str,
        worker_id: str,
        worker_info: bytes,
        leases: Sequence[Lease],
        lease_ms: int,
        started: Collection[str] = (),
    ) -> HeartbeatReply:
        """Renew every lease the worker holds in `queue`; see `Broker.heartbeat`."""
        await self._aregister(queue)
        return await self.arun(
            calls.heartbeat(self.keys(queue), worker_id, worker_info, leases, lease_ms, started)
        )

    async def leave(self, queue: str, worker_id: str) -> bool:
        """Take a stopping worker off `queue`'s worker list; see `Transport.leave`."""
        return await self.arun(calls.worker_leave(self.keys(queue), worker_id))

    async def release(self, queue: str, leases: Sequence[Lease]) -> int:
        """Give jobs back without spending an attempt."""
        return await self.arun(calls.release(self.keys(queue), leases))

    async def report_progress(self, queue: str, reports: Sequence[ProgressReport]) -> int:
        """Store running jobs' progress (`Transport.report_progress`), in one round trip."""
        keys, step = self.keys(queue), progress_calls.REPORTS_PER_CALL
        writes = [
            progress_calls.report(keys, reports[i : i + step]) for i in range(0, len(reports), step)
        ]
        return sum(await self._arun_all(writes)) if writes else 0

    async def maintain(self, queue: str, owner: str, lock_ms: int) -> MaintenanceReport | None:
        """Bounded housekeeping under the queue's maintenance lock."""
        return await self.arun(calls.maintain(self.keys(queue), self.settings, owner, lock_ms))

    async def chord_part(self, queue: str, chord_id: str, index: int, result: bytes) -> int:
        """Count a member's result; the last one enqueues the callback (see chord.lua)."""
        return await self.arun(calls.chord_part(self.keys(queue), chord_id, index, result))

    async def chord_abort(self, queue: str, chord_id: str, outcome: bytes) -> bool:
        """Fail a chord: its callback will not run and its result records why."""
        return await self.arun(calls.chord_abort(self.keys(queue), chord_id, outcome))

    async def wait_for_work(self, queues: Sequence[str], timeout_s: float) -> bool:
        """Block on the queues' wake tokens (BZPOPMIN) for at most `timeout_s` (capped at 5 s)."""
        wake_keys = [self.keys(q).wake for q in queues]
        timeout = max(0.001, min(timeout_s, _MAX_BLOCK_S))
        with self._faults("wait for work"):
            reply = await self.aclient.bzpopmin(wake_keys, timeout=timeout)
        return reply is not None

    async def interrupt_wait(self, queue: str) -> None:
        """Add a wake token to `queue` (one ZADD: nothing else changes, so no function)."""
        with self._faults("wake the queue"):
            await self.aclient.zadd(self.keys(queue).wake, {"interrupt": 0})

    async def wait_and_fetch(
        self,
        queue: str,
        timeout_s: float,
        n: int,
        lease_ms: int,
        worker_id: str,
        *,
        limited: int | None = None,
    ) -> Fetched:
        """Block on the queue's wake token, then fetch, in one round trip.

        The fetch is pipelined behind the BZPOPMIN on the same connection: Redis runs it the
        moment the wait ends, so an idle worker's first job costs no second round trip. Never
        sent twice: a fetch that ran but whose reply was lost must not lease a second batch.
        """
        keys = self.keys(queue)
        timeout = max(0.001, min(timeout_s, _MAX_BLOCK_S))
        fetch = calls.fetch(keys, self.settings, n, lease_ms, worker_id, limited)
        try:
            _, reply = await self._acall(
                ("BZPOPMIN", keys.wake, timeout), fetch.packed(), repeatable=False
            )
        except (RedisError, OSError) as error:
            raise translate(error, self.url, "wait for work") from None
        if isinstance(reply, ResponseError):
            if not is_missing_library(reply):
                raise translate(reply, self.url, fetch.name)
            return await self.arun(fetch)  # nothing ran: load the library, fetch again
        return fetch.parse(reply)

    @property
    def schedules(self) -> RedisSchedules:
        """The schedules and the scheduler's lease (`errands.broker.beat.ScheduleStore`)."""
        if self._schedules is None:
            self._schedules = RedisSchedules(self)
        return self._schedules

    def direct_line(self, queue: str, lease_ms: int, worker_id: str) -> RedisDirectLine | None:
        """A worker child's own line to Redis (`DirectWaits`); None for a TLS URL."""
        return open_line(self, queue, lease_ms, worker_id)

    async def aclose(self) -> None:
        """Close the async connections of the running event loop."""
        await self._waits.aclose()
        found = self._loops.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.direct.aclose()
            await found.client.aclose()
