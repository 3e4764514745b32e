"""Result waits (`get`, `aget`) on kept subscriber connections: subscribe and read, then sleep.

A wait subscribes to the job's channel and reads its state in one write (see `Subscriber`), so
an ack after the read still wakes it, and nothing polls. Connections are kept between waits: a
new one per `get()` costs a connect and a HELLO, more than the whole wait for a quick job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from errands.broker.redis import calls
from errands.broker.redis.faults import is_missing_library
from errands.broker.redis.subscriber import AsyncSubscriber, Subscriber
from errands.broker.types import JobSnapshot, read_outcome

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["ResultWaits"]

_MAX_BLOCK_S = 5.0  # each read of a wait, so that a dead connection is noticed
_KEEP_SUBSCRIBERS = 8  # idle subscriber connections kept per event loop for async waits


def _from_message(data: bytes) -> JobSnapshot:
    state, attempts = read_outcome(data)
    return JobSnapshot(state, data, attempts)


class ResultWaits:
    """The subscriber connections of one broker: one per thread, and a few per event loop.

    Args:
        broker: the broker whose connection settings and keys the waits use.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._local = threading.local()  # per thread: the `Subscriber` of `wait`
        # Per event loop: its idle subscribers (a connection belongs to the loop that opened it).
        self._idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[AsyncSubscriber]] = (
            weakref.WeakKeyDictionary()
        )

    def subscriber(self) -> Subscriber | None:
        """This thread's kept subscriber (None before its first wait)."""
        found: Subscriber | None = getattr(self._local, "subscriber", None)
        return found

    def wait(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Block until the job finishes or `timeout_s` passes.

        Raises:
            redis.RedisError: what redis-py raised (the broker translates it).
        """
        deadline = time.monotonic() + timeout_s
        for attempt in (1, 2):
            subscriber = self.subscriber()
            if subscriber is None or subscriber.pid != os.getpid():  # a forked child: its own
                subscriber = Subscriber(self._broker.client.connection_pool)
                self._local.subscriber = subscriber
            try:
                return self._wait_on(subscriber, queue, job_id, deadline)
            except (RedisConnectionError, RedisTimeoutError):
                self._local.subscriber = None
                with contextlib.suppress(Exception):
                    subscriber.close()
                if attempt == 2:
                    raise
                # The kept connection may be stale (the server restarted): one fresh try. A
                # wait only reads, so sending it again is safe.
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_on(
        self, subscriber: Subscriber, queue: str, job_id: str, deadline: float
    ) -> JobSnapshot:
        keys = self._broker.keys(queue)
        channel = keys.result_channel(job_id)
        read = calls.result(keys, job_id)
        try:
            reply, early = subscriber.run(channel, read.packed())
            state = read.parse(reply)
        except Exception as error:
            if not is_missing_library(error):
                raise
            early, state = None, self._broker.job_state(queue, job_id)  # loads it; subscribed
        if early is not None and not state.settled:
            state = _from_message(early)
        while not state.settled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            data = subscriber.message(channel, min(remaining, _MAX_BLOCK_S))
            if data is not None:
                state = _from_message(data)
        return state

    async def await_(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Async twin of `wait`: one subscriber per concurrent waiter, a few kept idle."""
        loop = asyncio.get_running_loop()
        idle = self._idle.setdefault(loop, [])
        deadline = loop.time() + timeout_s
        pool = self._broker.aclient.connection_pool
        for attempt in (1, 2):
            subscriber = idle.pop() if idle else AsyncSubscriber(pool)
            keep = False
            try:
                state = await self._await_on(subscriber, queue, job_id, deadline)
                keep = True
                return state
            except (RedisConnectionError, RedisTimeoutError):
                if attempt == 2:
                    raise
                # A kept connection may be stale (the server restarted): one fresh try.
            finally:
                if keep and len(idle) < _KEEP_SUBSCRIBERS:
                    idle.append(subscriber)
                else:
                    with contextlib.suppress(Exception):
                        await subscriber.aclose()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _await_on(
        self, subscriber: AsyncSubscriber, queue: str, job_id: str, deadline: float
    ) -> JobSnapshot:
        loop = asyncio.get_running_loop()
        keys = self._broker.keys(queue)
        channel = keys.result_channel(job_id)
        read = calls.result(keys, job_id)
        try:
            reply, early = await subscriber.run(channel, read.packed())
            state = read.parse(reply)
        except Exception as error:
            if not is_missing_library(error):
                raise
            early, state = None, await self._broker.ajob_state(queue, job_id)
        if early is not None and not state.settled:
            state = _from_message(early)
        while not state.settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            data = await subscriber.message(channel, min(remaining, _MAX_BLOCK_S))
            if data is not None:
                state = _from_message(data)
        return state

    def close(self) -> None:
        """Close this thread's subscriber."""
        subscriber = self.subscriber()
        if subscriber is not None:
            self._local.subscriber = None
            subscriber.close()

    async def aclose(self) -> None:
        """Close the idle async subscribers of the running event loop."""
        idle = self._idle.pop(asyncio.get_running_loop(), [])
        for subscriber in idle:
            with contextlib.suppress(Exception):
                await subscriber.aclose()
