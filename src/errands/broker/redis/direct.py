"""Blocking calls on a connection each thread keeps: one send and one read per call.

redis-py's ``execute_command`` takes a connection from the pool, runs its retry and
observability hooks and checks every argument in Python, on every call: against a Redis on
loopback, whose round trip is short, that layer is a large share of the call
(docs/performance.md). A producer sends its calls one at a time per thread, so each thread keeps
a connection of its own and packs commands with hiredis.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio as aredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

__all__ = ["Command", "LoopConnections", "ThreadConnections", "pack"]

#: A command as its parts, or already in the Redis protocol (`Call.packed`).
Command = Sequence[str | bytes | int | float] | bytes


def pack(command: Command) -> bytes:
    """One command in the Redis protocol, packed by hiredis (in C); bytes pass as they are."""
    if isinstance(command, bytes):
        return command
    # The stub types the tuple as one element long; any length is accepted.
    packed: bytes = hiredis.pack_command(tuple(command))  # type: ignore[arg-type]
    return packed


class ThreadConnections:
    """One connection per thread (and per process: a forked child opens its own).

    Args:
        pool: the pool whose settings (address, timeouts, credentials) the connections use;
            they are not taken from it, so its bookkeeping costs nothing per call.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[redis.Connection] = []

    def _connection(self) -> redis.Connection:
        held: tuple[int, redis.Connection] | None = getattr(self._local, "held", None)
        pid = os.getpid()
        if held is not None and held[0] == pid:
            return held[1]
        connection: redis.Connection = self._pool.connection_class(**self._pool.connection_kwargs)
        self._local.held = (pid, connection)
        with self._lock:
            if held is not None:  # the parent's, after a fork: never touch its socket
                self._opened = []
            self._opened.append(connection)
        return connection

    def call(self, command: Command) -> Any:
        """Send one command and return its reply.

        A connection found closed (Redis restarted, an idle timeout) is opened again and the
        command sent once more: errands' calls are safe to repeat (ids make enqueue idempotent).

        Raises:
            ResponseError: the server refused the command.
            ConnectionError, TimeoutError: Redis cannot be reached.
        """
        reply = self.call_many([command])[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def call_many(self, commands: Iterable[Command]) -> list[Any]:
        """Send every command before reading any reply: one round trip for all of them.

        Each command goes out as soon as the iterable yields it, so Redis runs the first while
        the next is being built. An error reply is returned in its place (a `ResponseError`),
        not raised.
        """
        packed: list[bytes] = []
        pending: Iterator[Command] | None = iter(commands)
        for attempt in (1, 2):
            connection = self._connection()
            try:
                if packed:  # the second attempt: everything made so far goes again
                    connection.send_packed_command(packed, check_health=False)
                for command in pending or ():
                    packed.append(pack(command))
                    connection.send_packed_command(packed[-1:], check_health=False)
                pending = None
                replies = [_read(connection) for _ in packed]
            except RedisConnectionError:
                connection.disconnect()
                if attempt == 2:
                    raise
            except BaseException:
                # Replies may be left unread on it (a timeout, an interrupt): start afresh.
                connection.disconnect()
                raise
            else:
                return replies
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.disconnect()
        self._local = threading.local()


def _read(connection: redis.Connection) -> Any:
    try:
        return connection.read_response()
    except ResponseError as error:
        return error


class LoopConnections:
    """Async twin of `ThreadConnections`: connections of one event loop, kept between calls.

    A call takes a free connection (or opens one) and puts it back when its replies are read:
    calls running at once each have their own, and a call cancelled halfway closes its
    connection, so no reply is ever read by the wrong caller.

    Args:
        pool: the async pool whose settings the connections use (they are not taken from it).
    """

    def __init__(self, pool: aredis.ConnectionPool) -> None:
        self._pool = pool
        self._free: list[AbstractConnection] = []
        self._opened: set[AbstractConnection] = set()

    async def call_many(self, commands: Sequence[Command], *, repeatable: bool = True) -> list[Any]:
        """Send every command, then read every reply (error replies are returned in place).

        A kept connection that fails is replaced and the commands sent once more, but only when
        `repeatable`: otherwise they may have run (Redis ran them, the reply was lost), so the
        error is raised; such calls first make sure a kept connection is still open instead.

        Raises:
            ConnectionError, TimeoutError: Redis cannot be reached.
        """
        packed = [pack(c) for c in commands]
        for attempt in (1, 2):
            reused = bool(self._free)
            connection = self._free.pop() if reused else self._open()
            if reused and not repeatable and not await _still_open(connection):
                await self._drop(connection)
                connection, reused = self._open(), False
            try:
                await connection.send_packed_command(packed, check_health=False)
                replies = [await _aread(connection) for _ in packed]
            except RedisConnectionError:
                await self._drop(connection)
                if attempt == 2 or not reused or not repeatable:
                    raise
            except BaseException:
                await self._drop(connection)
                raise
            else:
                self._free.append(connection)
                return replies
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> AbstractConnection:
        connection: AbstractConnection = self._pool.connection_class(**self._pool.connection_kwargs)
        self._opened.add(connection)
        return connection

    async def _drop(self, connection: AbstractConnection) -> None:
        self._opened.discard(connection)
        with contextlib.suppress(Exception):
            await connection.disconnect(nowait=True)

    async def aclose(self) -> None:
        """Close every connection."""
        opened, self._opened, self._free = self._opened, set(), []
        for connection in opened:
            with contextlib.suppress(Exception):
                await connection.disconnect()


async def _still_open(connection: AbstractConnection) -> bool:
    """False when a kept connection was closed by the server (a restart, an idle timeout)."""
    # redis-py 8 names it can_read; before, can_read_destructive (deprecated since).
    probe = getattr(connection, "can_read", None) or connection.can_read_destructive
    try:
        return not await probe()  # pending bytes are not ours to read either
    except (RedisConnectionError, OSError):
        return False


async def _aread(connection: AbstractConnection) -> Any:
    try:
        return await connection.read_response()
    except ResponseError as error:
        return error
