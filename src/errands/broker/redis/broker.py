"""`RedisBroker`: executes the calls of `calls.py` on Redis, blocking or async.

Connections open on first use, never in the constructor. The library is loaded with
``FUNCTION LOAD REPLACE`` the first time a call finds it missing, then the call is sent again
(nothing ran, so that is safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from errands.broker.base import BrokerSettings
from errands.broker.redis import calls
from errands.broker.redis.direct import Command, LoopConnections, ThreadConnections
from errands.broker.redis.keys import QueueKeys, check_queue_name, queues_registry_key
from errands.broker.redis.library import library_source
from errands.broker.redis.subscriber import AsyncSubscriber, Subscriber
from errands.broker.types import (
    AckCode,
    CancelCode,
    Enqueued,
    Fetched,
    HeartbeatReply,
    JobState,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    QueueInfo,
    read_outcome,
)
from errands.errors import BrokerTooOld, BrokerUnavailable

__all__ = ["RedisBroker"]

T = TypeVar("T")

# Blocking reads (BZPOPMIN, pub/sub waits) stay well under this, so a dead connection is noticed.
_SOCKET_TIMEOUT_S = 30.0
_MAX_BLOCK_S = 5.0
_KEEP_SUBSCRIBERS = 8  # idle subscriber connections kept per event loop for result waits


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisBroker:
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
        self._async: aredis.Redis | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._adirect: LoopConnections | None = None
        self._asubscribers: list[AsyncSubscriber] = []  # idle ones, of the current event loop
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._local = threading.local()  # per thread: the `Subscriber` of wait_result

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

    @property
    def aclient(self) -> aredis.Redis:
        """The async client of the running event loop, created on first use."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = aredis.Redis.from_url(
                self.url, socket_timeout=_SOCKET_TIMEOUT_S, socket_connect_timeout=5.0
            )
            self._async_loop = loop
            self._adirect = LoopConnections(self._async.connection_pool)
            self._asubscribers = []
        return self._async

    @property
    def adirect(self) -> LoopConnections:
        """The async calls' connections, of the running event loop."""
        client = self.aclient
        if self._adirect is None:  # pragma: no cover - set with the client
            self._adirect = LoopConnections(client.connection_pool)
        return self._adirect

    async def _acall(self, *commands: Command) -> list[Any]:
        return await self.adirect.call_many(commands)

    def _unavailable(self, error: Exception) -> BrokerUnavailable:
        return BrokerUnavailable(
            f"cannot reach Redis at {redact(self.url)} ({error}): start Redis there, or point "
            "errands elsewhere with App(broker_url=...) or ERRANDS_BROKER_URL; for a local "
            "server with no install, run `errands dev`"
        )

    @staticmethod
    def _too_old(error: ResponseError) -> BrokerTooOld | None:
        text = str(error).lower()
        if "unknown command" in text and ("function" in text or "fcall" in text):
            return BrokerTooOld(
                "this Redis has no Functions (FUNCTION, FCALL): errands needs Redis 7.0 or newer, "
                "or Valkey 7.2 or newer; upgrade the server"
            )
        return None

    @staticmethod
    def _missing_library(error: ResponseError) -> bool:
        return "function not found" in str(error).lower()

    def load_library(self) -> None:
        """Load (or replace) the errands Functions library on the server."""
        try:
            self.client.execute_command("FUNCTION", "LOAD", "REPLACE", library_source())
        except ResponseError as error:
            raise self._too_old(error) or error from None
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None

    async def aload_library(self) -> None:
        """Async twin of `load_library`."""
        try:
            await self.aclient.execute_command("FUNCTION", "LOAD", "REPLACE", library_source())
        except ResponseError as error:
            raise self._too_old(error) or error from None
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None

    def run(self, call: calls.Call[T]) -> T:
        """Execute one call, loading the library first if the server lacks it."""
        try:
            try:
                reply = self.direct.call(call.packed())
            except ResponseError as error:
                if not self._missing_library(error):
                    raise self._too_old(error) or error from None
                self.load_library()
                reply = self.direct.call(call.packed())
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        return call.parse(reply)

    async def arun(self, call: calls.Call[T]) -> T:
        """Async twin of `run`."""
        try:
            (reply,) = await self._acall(call.packed())
            if isinstance(reply, ResponseError):
                if not self._missing_library(reply):
                    raise self._too_old(reply) or reply from None
                await self.aload_library()
                (reply,) = await self._acall(call.packed())
                if isinstance(reply, ResponseError):
                    raise reply
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        return call.parse(reply)

    async def arun_pipelined(self, first: calls.Call[Any], second: calls.Call[T]) -> tuple[Any, T]:
        """Send two calls in one round trip (not a transaction: each is atomic on its own)."""
        try:
            replies = await self._acall(first.packed(), second.packed())
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        if any(isinstance(r, ResponseError) and self._missing_library(r) for r in replies):
            # Neither call ran: load the library and send them again, one after the other.
            await self.aload_library()
            return await self.arun(first), await self.arun(second)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return first.parse(replies[0]), second.parse(replies[1])

    def _register(self, queue: str) -> None:
        if queue not in self._registered:
            self.client.sadd(queues_registry_key(self.namespace), queue)
            self._registered.add(queue)

    async def _aregister(self, queue: str) -> None:
        if queue not in self._registered:
            await self.aclient.sadd(queues_registry_key(self.namespace), queue)
            self._registered.add(queue)

    # Producer side ----------------------------------------------------------------------------

    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Add jobs to `queue` in one call; see `Broker.enqueue`."""
        result = self.run(calls.enqueue(self.keys(queue), jobs))
        self._register(queue)
        return result

    def enqueue_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued]]:
        """Enqueue batches (queue, jobs), all sent on one connection before any reply is read.

        One round trip for all of them, and Redis runs each while the next is still on its way.
        """
        sent: list[tuple[str, Sequence[NewJob], calls.Call[list[Enqueued]]]] = []

        def commands() -> Iterator[bytes]:
            for queue, jobs in batches:
                call = calls.enqueue(self.keys(queue), jobs)
                sent.append((queue, jobs, call))
                yield call.packed()

        try:
            replies = self.direct.call_many(commands())
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        results: list[list[Enqueued]] = []
        for (queue, jobs, call), reply in zip(sent, replies, strict=True):
            if isinstance(reply, ResponseError):
                # The library was missing (nothing ran), or another error: one call at a time.
                results.append(self.enqueue(queue, jobs))
            else:
                results.append(call.parse(reply))
                self._register(queue)
        return results

    async def aenqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Async twin of `enqueue`."""
        result = await self.arun(calls.enqueue(self.keys(queue), jobs))
        await self._aregister(queue)
        return result

    def job_state(self, queue: str, job_id: str) -> JobState:
        """Read a job's state and, once finished, its outcome."""
        return self.run(calls.result(self.keys(queue), job_id))

    async def ajob_state(self, queue: str, job_id: str) -> JobState:
        """Async twin of `job_state`."""
        return await self.arun(calls.result(self.keys(queue), job_id))

    @staticmethod
    def _from_message(data: bytes) -> JobState:
        state, attempts = read_outcome(data)
        return JobState(state, data, attempts)

    def wait_result(self, queue: str, job_id: str, timeout_s: float) -> JobState:
        """Block until the job finishes or `timeout_s` passes.

        Subscribes and reads in one write, then waits: an ack after the read still wakes us,
        and nothing polls (see `Subscriber`).
        """
        deadline = time.monotonic() + timeout_s
        for attempt in (1, 2):
            # One subscriber connection per thread, kept between waits: a new connection per
            # get() costs a connect and a HELLO, more than the whole wait for a quick job.
            subscriber: Subscriber | None = getattr(self._local, "subscriber", None)
            if subscriber is None or subscriber.pid != os.getpid():  # a forked child: its own
                subscriber = self._local.subscriber = Subscriber(self.client.connection_pool)
            try:
                return self._wait_on(subscriber, queue, job_id, deadline)
            except (RedisConnectionError, RedisTimeoutError) as error:
                self._local.subscriber = None
                with contextlib.suppress(Exception):
                    subscriber.close()
                if attempt == 2:
                    raise self._unavailable(error) from None
                # The kept connection may be stale (the server restarted): one fresh try.
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_on(
        self, subscriber: Subscriber, queue: str, job_id: str, deadline: float
    ) -> JobState:
        channel = self.keys(queue).result_channel(job_id)
        read = calls.result(self.keys(queue), job_id)
        try:
            reply, early = subscriber.run(channel, read.packed())
            state = read.parse(reply)
        except ResponseError as error:
            if not self._missing_library(error):
                raise
            early, state = None, self.job_state(queue, job_id)  # loads it; subscribed already
        if early is not None and not state.settled:
            state = self._from_message(early)
        while not state.settled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            data = subscriber.message(channel, min(remaining, _MAX_BLOCK_S))
            if data is not None:
                state = self._from_message(data)
        return state

    async def await_result(self, queue: str, job_id: str, timeout_s: float) -> JobState:
        """Async twin of `wait_result`.

        Subscriber connections are kept between waits (one per concurrent waiter, a few kept
        idle): opening one per `aget()` costs more than the whole wait for a quick job.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        self.aclient  # noqa: B018 - binds the subscribers to this event loop
        for attempt in (1, 2):
            subscriber = (
                self._asubscribers.pop()
                if self._asubscribers
                else AsyncSubscriber(self.aclient.connection_pool)
            )
            keep = False
            try:
                state = await self._await_on(subscriber, queue, job_id, deadline)
                keep = True
                return state
            except (RedisConnectionError, RedisTimeoutError) as error:
                if attempt == 2:
                    raise self._unavailable(error) from None
                # A kept connection may be stale (the server restarted): one fresh try.
            finally:
                if keep and len(self._asubscribers) < _KEEP_SUBSCRIBERS:
                    self._asubscribers.append(subscriber)
                else:
                    with contextlib.suppress(Exception):
                        await subscriber.aclose()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _await_on(
        self, subscriber: AsyncSubscriber, queue: str, job_id: str, deadline: float
    ) -> JobState:
        loop = asyncio.get_running_loop()
        channel = self.keys(queue).result_channel(job_id)
        read = calls.result(self.keys(queue), job_id)
        try:
            reply, early = await subscriber.run(channel, read.packed())
            state = read.parse(reply)
        except ResponseError as error:
            if not self._missing_library(error):
                raise
            early, state = None, await self.ajob_state(queue, job_id)
        if early is not None and not state.settled:
            state = self._from_message(early)
        while not state.settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            data = await subscriber.message(channel, min(remaining, _MAX_BLOCK_S))
            if data is not None:
                state = self._from_message(data)
        return state

    def cancel(self, queue: str, job_id: str) -> CancelCode:
        """Cancel one job; see `Broker.cancel`."""
        return self.run(calls.cancel(self.keys(queue), job_id))

    async def acancel(self, queue: str, job_id: str) -> CancelCode:
        """Async twin of `cancel`."""
        return await self.arun(calls.cancel(self.keys(queue), job_id))

    def redrive(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> list[str]:
        """Move dead jobs back to ready; see `Broker.redrive`."""
        return self.run(calls.redrive(self.keys(queue), job_ids, limit))

    def purge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Delete dead jobs for good; see `Broker.purge`."""
        return self.run(calls.purge(self.keys(queue), job_ids, limit))

    def dead_jobs(self, queue: str, limit: int = 100) -> list[tuple[str, float, bytes | None]]:
        """The oldest dead jobs: (id, time of death in seconds, payload)."""
        keys = self.keys(queue)
        try:
            entries: list[tuple[bytes, float]] = self.client.zrange(  # type: ignore[assignment]
                keys.prefix + "dead", 0, limit - 1, withscores=True
            )
            ids = [member.decode() for member, _ in entries]
            payloads: list[bytes | None] = (
                self.client.hmget(keys.prefix + "jobs", ids) if ids else []  # type: ignore[assignment]
            )
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        return [
            (job_id, score / 1000.0, payload)
            for job_id, (_, score), payload in zip(ids, entries, payloads, strict=True)
        ]

    def info(self, queue: str) -> QueueInfo:
        """Counts per state, counters and workers of one queue."""
        return self.run(calls.info(self.keys(queue)))

    def set_paused(self, queue: str, paused: bool) -> None:
        """Pause or resume a queue: a paused queue hands out no job."""
        try:
            self.client.hset(self.keys(queue).cfg, "paused", "1" if paused else "0")
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None

    def known_queues(self) -> list[str]:
        """Every queue producers or workers have used, sorted."""
        try:
            members: set[bytes] = self.client.smembers(  # type: ignore[assignment]
                queues_registry_key(self.namespace)
            )
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        return sorted(m.decode() for m in members)

    def close(self) -> None:
        """Close the blocking connections."""
        subscriber: Subscriber | None = getattr(self._local, "subscriber", None)
        if subscriber is not None:
            self._local.subscriber = None
            subscriber.close()
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def chord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Record a chord in its callback's queue; False when it was already recorded."""
        return self.run(calls.chord_start(self.keys(queue), chord_id, size, callback, placeholder))

    async def achord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Async twin of `chord_start`."""
        call = calls.chord_start(self.keys(queue), chord_id, size, callback, placeholder)
        return await self.arun(call)

    # Worker side ------------------------------------------------------------------------------

    async def fetch(self, queue: str, n: int, lease_ms: int, worker_id: str) -> Fetched:
        """Lease up to `n` jobs; see `Broker.fetch`."""
        return await self.arun(calls.fetch(self.keys(queue), self.settings, n, lease_ms, worker_id))

    async def ack(self, queue: str, outcomes: Sequence[Outcome]) -> list[AckCode]:
        """Settle finished jobs; see `Broker.ack`."""
        return await self.arun(calls.ack(self.keys(queue), self.settings, outcomes))

    async def ack_and_fetch(
        self, queue: str, outcomes: Sequence[Outcome], n: int, lease_ms: int, worker_id: str
    ) -> tuple[list[AckCode], Fetched]:
        """Ack then fetch in one round trip."""
        keys = self.keys(queue)
        return await self.arun_pipelined(
            calls.ack(keys, self.settings, outcomes),
            calls.fetch(keys, self.settings, n, lease_ms, worker_id),
        )

    async def heartbeat(
        self, queue: str, worker_id: str, worker_info: bytes, leases: Sequence[Lease], lease_ms: int
    ) -> HeartbeatReply:
        """Renew every lease the worker holds in `queue`."""
        await self._aregister(queue)
        return await self.arun(
            calls.heartbeat(self.keys(queue), worker_id, worker_info, leases, lease_ms)
        )

    async def release(self, queue: str, leases: Sequence[Lease]) -> int:
        """Give jobs back without spending an attempt."""
        return await self.arun(calls.release(self.keys(queue), leases))

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
        try:
            reply = await self.aclient.bzpopmin(wake_keys, timeout=timeout)
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        return reply is not None

    async def interrupt_wait(self, queue: str) -> None:
        """Add a wake token to `queue` (one ZADD: nothing else changes, so no function)."""
        try:
            await self.aclient.zadd(self.keys(queue).wake, {"interrupt": 0})
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None

    async def wait_and_fetch(
        self, queue: str, timeout_s: float, n: int, lease_ms: int, worker_id: str
    ) -> Fetched:
        """Block on the queue's wake token, then fetch, in one round trip.

        The fetch is pipelined behind the BZPOPMIN on the same connection: Redis runs it the
        moment the wait ends, so an idle worker's first job costs no second round trip.
        """
        keys = self.keys(queue)
        timeout = max(0.001, min(timeout_s, _MAX_BLOCK_S))
        fetch = calls.fetch(keys, self.settings, n, lease_ms, worker_id)
        try:
            _, reply = await self._acall(("BZPOPMIN", keys.wake, timeout), fetch.packed())
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise self._unavailable(error) from None
        if isinstance(reply, ResponseError):
            if not self._missing_library(reply):
                raise reply
            return await self.arun(fetch)  # nothing ran: load the library, fetch again
        return fetch.parse(reply)

    async def aclose(self) -> None:
        """Close the async connections."""
        subscribers, self._asubscribers = self._asubscribers, []
        for subscriber in subscribers:
            with contextlib.suppress(Exception):
                await subscriber.aclose()
        if self._adirect is not None:
            await self._adirect.aclose()
            self._adirect = None
        if self._async is not None:
            await self._async.aclose()
            self._async = None
            self._async_loop = None
