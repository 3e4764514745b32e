"""A worker child's own line to Redis, so that a job sent to an idle worker costs one hop.

When its queue is drained, the supervisor tells each idle child to wait itself. The child then
blocks on the queue's wake key (BZPOPMIN) with a fetch of one job pipelined behind it, while it
watches its jobs pipe (`RedisDirectLine.lease`):

- a job it leased is reported to the supervisor before it runs, so the supervisor renews the
  lease and enforces the hard limit as for any other job;
- when such a job ends with nothing more to do, the child acknowledges it here itself, and the
  producer hears at once;
- a message on its jobs pipe ends the wait with ``CLIENT UNBLOCK`` sent on another connection:
  the pipelined fetch still runs, and whatever it leased is returned. Cancelling the wait on our
  side alone could leave a job leased to nobody until its lease expires.

The line is a socket of its own read by hiredis, not a redis-py connection: `select` must watch
it and the pipe at once, and redis-py keeps its socket private. It speaks RESP2 over TCP or a
Unix socket; for a TLS URL no line is offered and the supervisor waits instead.
"""

from __future__ import annotations

import select
import socket
from typing import TYPE_CHECKING, Any

import hiredis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import InvalidResponse, RedisError, ResponseError

from errands.broker.redis import calls
from errands.broker.redis.direct import Command, pack
from errands.broker.redis.faults import is_missing_library, translate
from errands.broker.types import AckCode, Fetched, Outcome
from errands.errors import BrokerError

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["RedisDirectLine", "open_line"]

_BLOCK_S = 5.0  # a bound on each BZPOPMIN, so a dead connection is noticed
_SILENCE_S = _BLOCK_S + 10.0  # no reply for this long: the connection is dead
_CONNECT_S = 5.0
_READ_SIZE = 65536


def open_line(
    broker: RedisBroker, queue: str, lease_ms: int, worker_id: str
) -> RedisDirectLine | None:
    """A line for one child of `worker_id`, or None for a TLS URL (see the module docstring).

    Nothing is connected yet: the first `lease` connects.
    """
    address: dict[str, Any] = parse_url(broker.url)  # type: ignore[no-untyped-call]  # untyped upstream
    if address.get("connection_class") is SSLConnection:
        return None
    return RedisDirectLine(broker, address, queue, lease_ms, worker_id)


class _Connection:
    """One RESP2 connection: a socket, a hiredis reader, one write per batch of commands."""

    def __init__(self, address: dict[str, Any], name: str) -> None:
        path = address.get("path")
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(_CONNECT_S)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
        else:
            where = (address.get("host", "localhost"), int(address.get("port", 6379)))
            sock = socket.create_connection(where, timeout=_CONNECT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_SILENCE_S)
        self.sock = sock
        # Error replies come back as ResponseError instances (not raised), so that they are
        # told apart exactly as redis-py's are (`faults.translate`).
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        hello: list[Command] = []
        password = address.get("password")
        if password is not None:
            username = address.get("username")
            hello.append(("AUTH", username, password) if username else ("AUTH", password))
        if int(address.get("db") or 0):
            hello.append(("SELECT", int(address["db"])))
        # Named, so that CLIENT LIST shows which worker's children wait on Redis.
        hello += [("CLIENT", "SETNAME", name), ("CLIENT", "ID")]
        self.send(*hello)
        replies = [self.read() for _ in hello]
        for reply in replies:
            if isinstance(reply, ResponseError):
                self.close()
                raise reply
        self.client_id = int(replies[-1])

    def send(self, *commands: Command) -> None:
        """Send every command in one write."""
        self.sock.sendall(b"".join(pack(c) for c in commands))

    def read(self) -> Any:
        """The next reply (an error reply as a `ResponseError`, returned)."""
        while True:
            reply = self._reader.gets()
            if reply is not False:
                return reply
            chunk = self.sock.recv(_READ_SIZE)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self._reader.feed(chunk)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


class RedisDirectLine:
    """`errands.broker.transport.DirectLine` on Redis (opened by `open_line`).

    Args:
        broker: the broker whose keys, settings and URL the line uses.
        address: the URL's parts (redis-py's `parse_url`).
        queue: the queue to wait on.
        lease_ms: the lease length of what it takes.
        worker_id: the worker whose child it serves (its leases are that worker's).
    """

    def __init__(
        self,
        broker: RedisBroker,
        address: dict[str, Any],
        queue: str,
        lease_ms: int,
        worker_id: str,
    ) -> None:
        self._broker = broker
        self._address = address
        self._keys = broker.keys(queue)
        self._lease_ms = lease_ms
        self._worker_id = worker_id
        self._connection: _Connection | None = None
        # Shorter than _BLOCK_S when the last fetch said a delayed job falls due (or a lease
        # expires) sooner: the fetch behind the wait then promotes (or reaps) it on time.
        self._block_s = _BLOCK_S

    def _connected(self) -> _Connection:
        if self._connection is None:
            self._connection = _Connection(self._address, f"errands-wait:{self._worker_id}")
        return self._connection

    def lease(self, watch_fd: int) -> tuple[Fetched, bool]:
        """See `DirectLine.lease`.

        Raises:
            BrokerError: Redis failed the wait or the fetch, or cannot be reached.
        """
        try:
            return self._lease(watch_fd)
        except BrokerError:  # from loading the library: already an errands error
            self.close()
            raise
        except (RedisError, OSError) as error:
            self.close()
            raise translate(error, self._broker.url, "wait for work") from None

    def _lease(self, watch_fd: int) -> tuple[Fetched, bool]:
        connection = self._connected()
        fetch = calls.fetch(self._keys, self._broker.settings, 1, self._lease_ms, self._worker_id)
        connection.send(("BZPOPMIN", self._keys.wake, round(self._block_s, 3)), fetch.packed())
        fd = connection.sock.fileno()
        readable, _, _ = select.select([fd, watch_fd], [], [], _SILENCE_S)
        if not readable:
            raise TimeoutError(f"no reply from Redis within {_SILENCE_S:g}s")
        watched = watch_fd in readable
        if fd not in readable:
            self._broker.direct.call(("CLIENT", "UNBLOCK", connection.client_id))
        woken = connection.read()  # the wake token, or nil
        reply = connection.read()
        if isinstance(woken, ResponseError):
            raise woken
        if isinstance(reply, ResponseError):
            if not is_missing_library(reply):
                raise reply
            self._broker.load_library()  # nothing ran: the next wait fetches
            return Fetched([], None), watched
        fetched = fetch.parse(reply)
        soonest = min(
            (ms for ms in (fetched.next_due_ms, fetched.next_expiry_ms) if ms is not None),
            default=None,
        )
        self._block_s = _BLOCK_S if soonest is None else min(_BLOCK_S, max(0.001, soonest / 1000))
        return fetched, watched

    def ack(self, outcome: Outcome) -> AckCode:
        """See `DirectLine.ack`.

        Raises:
            BrokerError: Redis refused the ack or cannot be reached (it may have run: the
                supervisor's ack of the same outcome is then answered `STALE` or repeats it).
        """
        call = calls.ack(self._keys, self._broker.settings, [outcome])
        try:
            connection = self._connected()
            connection.send(call.packed())
            reply = connection.read()
            if isinstance(reply, ResponseError):
                raise reply
        except (RedisError, OSError) as error:
            self.close()
            raise translate(error, self._broker.url, call.name) from None
        return call.parse(reply)[0]

    def close(self) -> None:
        """See `DirectLine.close`."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
