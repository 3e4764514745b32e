"""Connections kept for result waits (`get`, `aget`): subscribe and read in one round trip.

Over RESP2 a subscribed connection runs nothing but (un)subscribe commands, so a wait took two
round trips before it could sleep: subscribe and wait for the confirmation, then read the job's
state on another connection (only then is an ack after the read sure to be heard). These
connections speak RESP3, where a subscribed connection runs any command, and Redis runs one
connection's commands in order: SUBSCRIBE and the read go out in one write, and an ack that
comes after the read is published to a channel already listened to.

The last wait's channel is left subscribed, and dropped in the next wait's write: nothing is sent
between a result and its caller. A message still coming on it is skipped like any other that is
not the one waited for.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import TimeoutError as RedisTimeoutError

from errands.broker.redis.direct import pack

__all__ = ["AsyncSubscriber", "Subscriber"]

_PUSHES = (b"message", b"subscribe", b"unsubscribe")


def _is_push(reply: Any) -> bool:
    # A read's reply is {state, outcome, attempts}: its state is never one of these words.
    return isinstance(reply, list) and len(reply) == 3 and reply[0] in _PUSHES


def _as_is(push: Any) -> Any:
    return push


async def _aas_is(push: Any) -> Any:
    return push


def _pass_pushes_through(connection: Any, handler: Any) -> None:
    """Have read_response return pushes (subscribe confirmations, messages) as they are.

    redis-py 5.1 and later hand a push to a handler first; 5.0 returns it like any reply.
    """
    setter = getattr(connection._parser, "set_pubsub_push_handler", None)
    if setter is not None:
        setter(handler)


def _commands(leftover: str | None, channel: str, command: bytes) -> list[bytes]:
    parts = [] if leftover is None else [pack(("UNSUBSCRIBE", leftover))]
    return [*parts, pack(("SUBSCRIBE", channel)), command]


class Subscriber:
    """A blocking RESP3 connection for result waits, and the channel it still listens to.

    Args:
        pool: the pool whose settings (address, timeouts, credentials) the connection copies.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.connection: redis.Connection = pool.connection_class(
            **{**pool.connection_kwargs, "protocol": 3}
        )
        _pass_pushes_through(self.connection, _as_is)
        self.leftover: str | None = None
        self.pid = os.getpid()  # a forked child opens its own, never reading from this socket

    def run(self, channel: str, command: bytes) -> tuple[Any, bytes | None]:
        """Listen to `channel` instead of the last wait's, and run `command` after, in one write.

        Returns:
            The command's reply, and a message published on `channel` before it (None: none).

        Raises:
            ResponseError: the command failed (`channel` is listened to all the same).
        """
        self.connection.send_packed_command(
            _commands(self.leftover, channel, command), check_health=False
        )
        self.leftover = channel
        wanted, early = channel.encode(), None
        while True:
            reply = self.connection.read_response(push_request=True)
            if not _is_push(reply):
                return reply, early
            if reply[0] == b"message" and reply[1] == wanted:
                early = reply[2]

    def message(self, channel: str, timeout_s: float) -> bytes | None:
        """The next message on `channel` within `timeout_s` (None: none came)."""
        wanted = channel.encode()
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.connection.can_read(timeout=remaining):
                return None
            reply = self.connection.read_response(push_request=True)
            if _is_push(reply) and reply[0] == b"message" and reply[1] == wanted:
                data: bytes = reply[2]
                return data
        return None

    def close(self) -> None:
        """Close the connection."""
        self.connection.disconnect()


class AsyncSubscriber:
    """Async twin of `Subscriber`, on one event loop's connection."""

    def __init__(self, pool: aredis.ConnectionPool) -> None:
        self.connection: AbstractConnection = pool.connection_class(
            **{**pool.connection_kwargs, "protocol": 3}
        )
        _pass_pushes_through(self.connection, _aas_is)
        self.leftover: str | None = None

    async def run(self, channel: str, command: bytes) -> tuple[Any, bytes | None]:
        """Async twin of `Subscriber.run`."""
        await self.connection.send_packed_command(
            _commands(self.leftover, channel, command), check_health=False
        )
        self.leftover = channel
        wanted, early = channel.encode(), None
        while True:
            reply = await self.connection.read_response(push_request=True)
            if not _is_push(reply):
                return reply, early
            if reply[0] == b"message" and reply[1] == wanted:
                early = reply[2]

    async def message(self, channel: str, timeout_s: float) -> bytes | None:
        """Async twin of `Subscriber.message`."""
        wanted = channel.encode()
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                # Left connected on a timeout: a read that found nothing leaves nothing half-read.
                reply = await self.connection.read_response(
                    timeout=remaining, disconnect_on_error=False, push_request=True
                )
            except RedisTimeoutError:  # redis-py before 8 raises; 8 returns None
                return None
            if reply is None:
                return None
            if _is_push(reply) and reply[0] == b"message" and reply[1] == wanted:
                data: bytes = reply[2]
                return data
        return None

    async def aclose(self) -> None:
        """Close the connection."""
        await self.connection.disconnect()
