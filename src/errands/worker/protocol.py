"""Messages between the supervisor and its children: length-prefixed msgpack frames on pipes.

The supervisor sends `Run` (several jobs per message when there is a backlog), `Cancel`, `Stop`
and `Wait` (wait for work on the broker yourself: `DirectWaits`); a child answers
`Ready` once, `Done` with outcomes, `Dropped` with the jobs it had not started when it was told
to stop, `Took` with the jobs it leased itself while waiting, `Died` with the jobs its own
fetch sent to the dead set, `WaitEnded` when it stopped waiting on its own, and `Progressed`
with what its jobs reported of their progress (throttled: `errands.worker.progress`). Payloads
stay raw bytes: the child decodes the arguments.
"""

from __future__ import annotations

import os
import select
import struct

import msgspec

from errands.broker.types import NewJob, OutcomeKind

__all__ = [
    "Cancel",
    "Died",
    "Done",
    "Dropped",
    "Finished",
    "FollowUp",
    "FrameReader",
    "Job",
    "Progressed",
    "Ready",
    "Run",
    "Stop",
    "Took",
    "Wait",
    "WaitEnded",
    "decode_from_child",
    "decode_to_child",
    "encode",
]

_HEADER = struct.Struct("!I")


class Job(msgspec.Struct, array_like=True, frozen=True):
    """One job for a child: id, raw payload, attempt (1 on the first run)."""

    id: str
    payload: bytes
    attempt: int


class Run(msgspec.Struct, tag="run", array_like=True):
    """Run these jobs, in order (sync ones one at a time; async ones concurrently)."""

    jobs: list[Job]


class Cancel(msgspec.Struct, tag="cancel", array_like=True):
    """These jobs were asked to stop: `ctx.is_cancelled()` turns True for them."""

    ids: list[str]


class Stop(msgspec.Struct, tag="stop", array_like=True):
    """Finish what is running, report what was not started (`Dropped`), then exit."""


class Wait(msgspec.Struct, tag="wait", array_like=True):
    """Nothing is queued: when idle, wait on the broker for `queue` and lease one job yourself."""

    queue: str
    lease_ms: int
    worker_id: str


class FollowUp(msgspec.Struct, array_like=True, frozen=True):
    """What to do in Redis before the job that made it is acknowledged.

    A chain's next step (`job`), or a chord member's report: its result counted (`chord` with
    `index` and the result JSON in `data`). `queue` is where the step or the chord's callback
    lives. (A member that ends dead fails its chord through its queue's notes, whatever killed
    it: see chord.lua.)
    """

    queue: str
    job: NewJob | None = None
    chord: str = ""
    index: int = 0
    data: bytes = b""


class Finished(msgspec.Struct, array_like=True, frozen=True):
    """How one job ended: ok / retry / fail / defer, the outcome record, the delay, follow-ups.

    `run_s` is how long the run took and `wait_s` how long the job waited from its enqueue to
    the start of its first run, in seconds, as the process that ran it measured (-1: not
    measured, as for a job that never started or the retry of one).
    """

    id: str
    kind: OutcomeKind
    outcome: bytes
    retry_delay_ms: int = 0
    follow_ups: list[FollowUp] = []
    acked: bool = False  # the child acknowledged it in Redis itself (a job it took)
    run_s: float = -1.0
    wait_s: float = -1.0


class Ready(msgspec.Struct, tag="ready", array_like=True):
    """The child imported the app and waits for work."""

    pid: int


class Done(msgspec.Struct, tag="done", array_like=True):
    """Outcomes of finished jobs (the supervisor times hard limits from their arrival)."""

    results: list[Finished]


class Dropped(msgspec.Struct, tag="dropped", array_like=True):
    """Jobs the child will not start (it was told to stop): give them back."""

    ids: list[str]


class Took(msgspec.Struct, tag="took", array_like=True):
    """Jobs the child leased itself while waiting (with their lease tokens); it runs them.

    `more` says ready jobs were left behind them: the supervisor fetches for the other children.
    """

    queue: str
    jobs: list[Job]
    tokens: list[str]
    more: bool = False


class Died(msgspec.Struct, tag="died", array_like=True):
    """A fetch of the child's own sent jobs of `queue` to the dead set (reaped, stalled)."""

    queue: str
    ids: list[str]
    outcomes: list[bytes]


class WaitEnded(msgspec.Struct, tag="wait_ended", array_like=True):
    """The child stopped waiting on the broker (an error, or no line): the supervisor waits."""

    reason: str


class Progressed(msgspec.Struct, tag="progressed", array_like=True):
    """The latest progress records (JSON, `errands.progress`) of running jobs, by job id."""

    ids: list[str]
    records: list[bytes]


ToChild = Run | Cancel | Stop | Wait
FromChild = Ready | Done | Dropped | Took | Died | WaitEnded | Progressed

_encoder = msgspec.msgpack.Encoder()
_to_child: msgspec.msgpack.Decoder[ToChild] = msgspec.msgpack.Decoder(ToChild)
_from_child: msgspec.msgpack.Decoder[FromChild] = msgspec.msgpack.Decoder(FromChild)


def encode(message: ToChild | FromChild) -> bytes:
    """One frame: a 4-byte big-endian length, then the msgpack body."""
    body = _encoder.encode(message)
    return _HEADER.pack(len(body)) + body


def decode_to_child(body: bytes) -> ToChild:
    """Decode a frame body the supervisor sent."""
    return _to_child.decode(body)


def decode_from_child(body: bytes) -> FromChild:
    """Decode a frame body a child sent."""
    return _from_child.decode(body)


class FrameReader:
    """Blocking frame reads from a file descriptor (the child side)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = os.read(self._fd, max(65536, size - len(self._buffer)))
            if not chunk:
                return False
            self._buffer += chunk
        return True

    @property
    def fd(self) -> int:
        """The file descriptor read from."""
        return self._fd

    def ready(self) -> bool:
        """Whether a frame has begun to arrive (a read would not wait for the next one)."""
        if self._buffer:
            return True
        readable, _, _ = select.select([self._fd], [], [], 0)
        return bool(readable)

    def read(self) -> bytes | None:
        """The next frame body, or None at end of file (the supervisor is gone)."""
        if not self._fill(_HEADER.size):
            return None
        (length,) = _HEADER.unpack_from(self._buffer)
        if not self._fill(_HEADER.size + length):
            return None
        body = bytes(self._buffer[_HEADER.size : _HEADER.size + length])
        del self._buffer[: _HEADER.size + length]
        return body


def header_size() -> int:
    """Bytes in a frame header."""
    return _HEADER.size


def body_length(header: bytes) -> int:
    """The body length a frame header announces."""
    (length,) = _HEADER.unpack(header)
    return int(length)
