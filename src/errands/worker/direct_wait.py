"""An idle child's own wait for work, so that a job sent to an idle worker costs one hop.

When its queue is drained, the supervisor tells each idle child to wait on Redis itself
(`Wait`). The child then blocks on the queue's wake key (BZPOPMIN) with a fetch of one job
pipelined behind it, while it watches its jobs pipe:

- a job it leased is reported to the supervisor (`Took`, with its lease token) before it runs,
  so the supervisor renews the lease and enforces the hard limit as for any other job;
- when such a job ends with nothing more to do (no retry, no follow-ups, nothing else queued),
  the child acknowledges it in Redis itself, and the producer hears at once; every other
  outcome goes through the supervisor as usual;
- a message on its jobs pipe ends the wait with ``CLIENT UNBLOCK`` on another connection: the
  pipelined fetch still runs, and whatever it leased is reported and run (or given back when
  the message says stop). Cancelling the wait on our side alone could leave a job leased to
  nobody until its lease expires.
"""

from __future__ import annotations

import select
import socket

import redis

from errands.broker.redis import calls
from errands.broker.redis.broker import RedisBroker
from errands.broker.redis.direct import Command, pack
from errands.broker.types import AckCode, Fetched, Outcome
from errands.worker.protocol import Finished, Wait

__all__ = ["DirectLine"]

_BLOCK_S = 5.0  # a bound on each BZPOPMIN, so a dead connection is noticed
_SILENCE_S = _BLOCK_S + 10.0  # no reply for this long: the connection is dead


class DirectLine:
    """A child's connection to Redis for waiting, leasing and acknowledging by itself.

    Args:
        broker: the app's broker (its keys, settings and connection settings).
        wait: the queue, lease and worker id the supervisor gave.
    """

    def __init__(self, broker: RedisBroker, wait: Wait) -> None:
        self._broker = broker
        self.wait = wait
        self._keys = broker.keys(wait.queue)
        pool = broker.client.connection_pool
        # Named, so that CLIENT LIST shows which worker's children wait on Redis.
        settings = {**pool.connection_kwargs, "client_name": f"errands-wait:{wait.worker_id}"}
        self._connection: redis.Connection = pool.connection_class(**settings)
        self._client_id: int | None = None
        # Shorter than _BLOCK_S when the last fetch said a delayed job falls due (or a lease
        # expires) sooner: the fetch behind the wait then promotes (or reaps) it on time.
        self._block_s = _BLOCK_S

    def _send(self, *commands: Command) -> None:
        # One write for all of them: redis-py would make a system call per command.
        packed = b"".join(pack(c) for c in commands)
        self._connection.send_packed_command([packed], check_health=False)

    def lease(self, jobs_fd: int) -> tuple[Fetched, bool]:
        """Block until a job is leased to this child or a message comes on `jobs_fd`.

        Returns:
            what the fetch brought (no job, or one), and whether a message is waiting on
            `jobs_fd`.

        Raises:
            redis.RedisError: Redis failed us; the caller stops waiting on it.
        """
        if self._client_id is None:
            self._send(("CLIENT", "ID"))
            self._client_id = int(self._connection.read_response())
        fetch = calls.fetch(
            self._keys, self._broker.settings, 1, self.wait.lease_ms, self.wait.worker_id
        )
        self._send(("BZPOPMIN", self._keys.wake, round(self._block_s, 3)), fetch.packed())
        # The socket is redis-py's own: select() needs it to watch Redis and the pipe at once.
        sock: socket.socket | None = self._connection._sock
        if sock is None:
            raise redis.ConnectionError("the connection closed while sending")
        readable, _, _ = select.select([sock.fileno(), jobs_fd], [], [], _SILENCE_S)
        if not readable:
            raise redis.ConnectionError(f"no reply from Redis within {_SILENCE_S:g}s")
        message_waiting = jobs_fd in readable
        if sock.fileno() not in readable:
            self._broker.direct.call(("CLIENT", "UNBLOCK", self._client_id))
        self._connection.read_response()  # the wake token, or nil
        try:
            reply = self._connection.read_response()
        except redis.ResponseError as error:
            if "function not found" in str(error).lower():
                self._broker.load_library()  # nothing ran: the next wait fetches
                return Fetched([], None), message_waiting
            raise
        fetched = fetch.parse(reply)
        soonest = min(
            (ms for ms in (fetched.next_due_ms, fetched.next_expiry_ms) if ms is not None),
            default=None,
        )
        self._block_s = _BLOCK_S if soonest is None else min(_BLOCK_S, max(0.001, soonest / 1000))
        return fetched, message_waiting

    def ack(self, finished: Finished, token: str) -> AckCode:
        """Settle a job this child took: one call, which also publishes its result."""
        outcome = Outcome(
            finished.id, token, finished.kind, finished.outcome, finished.retry_delay_ms
        )
        call = calls.ack(self._keys, self._broker.settings, [outcome])
        self._send(call.packed())
        return call.parse(self._connection.read_response())[0]

    def close(self) -> None:
        """Close the connection."""
        self._connection.disconnect()
