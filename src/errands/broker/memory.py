"""`MemoryBroker`: the whole Broker protocol in this process's memory, for tests and demos.

It behaves as `RedisBroker` does, call for call and code for code (the state changes live in
`errands.broker.memory_state`, a mirror of the Lua library), so a test that passes here passes
on Redis. Time comes from an injectable clock, so delays, leases and expiries can be tested
without sleeping. One lock guards everything: it is safe to use from several threads and event
loops at once. Waiters are woken by the change they wait for, never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TypeVar

from errands.broker import memory_admin, memory_progress, memory_series
from errands.broker.memory_schedules import MemorySchedules
from errands.broker.memory_state import QueueState
from errands.broker.memory_views import MemoryInspector
from errands.broker.names import check_queue_name
from errands.broker.reading import check_limit
from errands.broker.series import Sampled
from errands.broker.settings import BrokerSettings
from errands.broker.types import (
    AckCode,
    CancelCode,
    Enqueued,
    Fetched,
    HeartbeatReply,
    JobSnapshot,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    ProgressReport,
    read_outcome,
)
from errands.errors import BrokerError
from errands.progress import Progress

__all__ = ["MemoryBroker"]

T = TypeVar("T")


class _Mailbox:
    """Where one waiter receives published outcomes; async waiters also get an Event set."""

    __slots__ = ("event", "loop", "messages")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.messages: list[bytes] = []
        self.loop = loop
        self.event = asyncio.Event()  # binds to a loop only when awaited; unused by threads

    def wake(self) -> None:
        """Wake an async waiter from any thread (threads wait on the broker's Condition)."""
        if self.loop is not None:
            # A closed loop raises RuntimeError: nobody is left there to wake.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.event.set)


async def _wait(box: _Mailbox, deadline: float) -> bool:
    """Wait for `box` to be woken before `deadline` (loop time); False when time ran out."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return False
    try:
        await asyncio.wait_for(box.event.wait(), remaining)
    except TimeoutError:
        return False
    # Cleared before the mailbox is read, so a message posted after the read wakes us again.
    box.event.clear()
    return True


def _from_message(messages: list[bytes]) -> JobSnapshot | None:
    # As RedisBroker reads a published outcome: its own state and attempts.
    if not messages:
        return None
    state, attempts = read_outcome(messages[-1])
    return JobSnapshot(state, messages[-1], attempts)


class MemoryBroker:
    """A broker in memory with the semantics of `RedisBroker`; nothing leaves the process.

    Use it to test tasks without Redis: ``App(broker=MemoryBroker())``. Broker time (delays,
    leases, expiries, the maintenance lock) comes from `clock`; the timeouts of the blocking
    calls (`wait_result`, `wait_for_work`) are real time, since they bound how long the caller
    blocks.

    Args:
        settings: the bounds enforced (dead-letter cap, per-call limits), as for `RedisBroker`.
        clock: the current time in seconds, `time.time` by default; pass a function you move
            by hand to test delays and leases without sleeping.
    """

    def __init__(
        self,
        *,
        settings: BrokerSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or BrokerSettings()
        self.clock = clock
        self._lock = threading.Lock()
        self._published = threading.Condition(self._lock)
        self._queues: dict[str, QueueState] = {}
        self._known: set[str] = set()
        self._schedules = MemorySchedules(self._now_ms)
        self._subscribers: dict[tuple[str, str], set[_Mailbox]] = {}
        self._work_waiters: set[_Mailbox] = set()
        self._series: dict[str, dict[int, bytes]] = {}  # memory_series.py

    def __repr__(self) -> str:
        return f"MemoryBroker(queues={sorted(self._queues)!r})"

    # Plumbing (callers hold the lock) ---------------------------------------------------------

    def _now_ms(self) -> int:
        # To the nearest ms, so a test clock moved in exact steps lands on the step.
        return round(self.clock() * 1000)

    def _queue(self, name: str) -> QueueState:
        found = self._queues.get(name)
        if found is None:
            found = self._queues[check_queue_name(name)] = QueueState(name)
        return found

    def _run(self, queue: str, call: Callable[[QueueState, int], T]) -> T:
        """Run one state change atomically, then wake whoever it concerns."""
        with self._lock:
            state = self._queue(queue)
            result = call(state, self._now_ms())
            self._deliver(state)
            return result

    def _deliver(self, state: QueueState) -> None:
        if state.published:
            for job_id, outcome in state.published:
                for box in self._subscribers.get((state.name, job_id), ()):
                    box.messages.append(outcome)
                    box.wake()
            state.published.clear()
            self._published.notify_all()
        if state.armed:
            state.armed = False
            for box in self._work_waiters:
                box.wake()

    def _subscribe(self, queue: str, job_id: str, box: _Mailbox) -> JobSnapshot:
        # Subscribe, then read, under one lock: an outcome published after the read is in the
        # mailbox, so there is no lost wake-up.
        state = self._queue(queue)
        self._subscribers.setdefault((queue, job_id), set()).add(box)
        return state.result(self._now_ms(), job_id)

    def _unsubscribe(self, queue: str, job_id: str, box: _Mailbox) -> None:
        boxes = self._subscribers.get((queue, job_id))
        if boxes is not None:
            boxes.discard(box)
            if not boxes:
                del self._subscribers[(queue, job_id)]

    def _take_wake(self, queues: Sequence[str]) -> bool:
        # BZPOPMIN: one token from the first queue that has any (tokens all score 0).
        for name in queues:
            state = self._queues.get(name)
            if state is not None and state.wake:
                state.wake.remove(min(state.wake))
                return True
        return False

    # Producer side ----------------------------------------------------------------------------

    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Add jobs to `queue`; see `Broker.enqueue`."""
        result = self._run(queue, lambda q, now: q.enqueue(now, jobs))
        with self._lock:
            self._known.add(queue)
        return result

    def enqueue_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued] | BrokerError]:
        """`enqueue` for each (queue, jobs) batch, in order (none is ever refused here)."""
        return [self.enqueue(queue, jobs) for queue, jobs in batches]

    async def aenqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Async twin of `enqueue`."""
        return self.enqueue(queue, jobs)

    async def acontinue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """The next steps of finished jobs (no memory limit here: as `aenqueue`)."""
        return self.enqueue(queue, jobs)

    def job_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Read a job's state and, once finished, its outcome."""
        return self._run(queue, lambda q, now: q.result(now, job_id))

    async def ajob_state(self, queue: str, job_id: str) -> JobSnapshot:
        """Async twin of `job_state`."""
        return self.job_state(queue, job_id)

    async def ajob_states(self, jobs: Sequence[tuple[str, str]]) -> list[JobSnapshot]:
        """`ajob_state` of many jobs, in order."""
        return [self.job_state(queue, job_id) for queue, job_id in jobs]

    def job_progress(self, queue: str, job_id: str) -> Progress | None:
        """What the job last reported of its progress; see `ResultStore.job_progress`."""
        return self.read(queue, lambda q, _: memory_progress.progress_of(q, job_id))

    async def ajob_progress(self, queue: str, job_id: str) -> Progress | None:
        """Async twin of `job_progress`."""
        return self.job_progress(queue, job_id)

    def wait_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Block until the job finishes or `timeout_s` (real seconds) passes."""
        deadline = time.monotonic() + timeout_s
        box = _Mailbox(None)
        with self._published:
            state = self._subscribe(queue, job_id, box)
            try:
                while not state.settled:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._published.wait(remaining)
                    state = _from_message(box.messages) or state
            finally:
                self._unsubscribe(queue, job_id, box)
        return state

    async def await_result(self, queue: str, job_id: str, timeout_s: float) -> JobSnapshot:
        """Async twin of `wait_result`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        box = _Mailbox(loop)
        with self._lock:
            state = self._subscribe(queue, job_id, box)
        try:
            while not state.settled and await _wait(box, deadline):
                with self._lock:
                    state = _from_message(box.messages) or state
        finally:
            with self._lock:
                self._unsubscribe(queue, job_id, box)
        return state

    def cancel(self, queue: str, job_id: str) -> CancelCode:
        """Cancel one job; see `Broker.cancel`."""
        return self._run(queue, lambda q, now: q.cancel(now, job_id))

    async def acancel(self, queue: str, job_id: str) -> CancelCode:
        """Async twin of `cancel`."""
        return self.cancel(queue, job_id)

    def redrive(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> list[str]:
        """Move dead jobs back to ready, their chords failed first; see `Broker.redrive`."""
        self._deliver_chord_failures(queue)
        return self._run(queue, lambda q, _: q.redrive(job_ids, limit))

    async def aredrive(
        self, queue: str, job_ids: Sequence[str] = (), limit: int = 100
    ) -> list[str]:
        """Async twin of `redrive`."""
        return self.redrive(queue, job_ids, limit)

    def purge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Delete dead jobs for good; see `Broker.purge`."""
        return self._run(queue, lambda q, _: q.purge(job_ids, limit))

    async def apurge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Async twin of `purge`."""
        return self.purge(queue, job_ids, limit)

    def chord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Record a chord in its callback's queue; see `Broker.chord_start`."""
        send_ms = self.settings.chord_send_ms
        return self._run(
            queue,
            lambda q, now: q.chord_start(now, chord_id, size, callback, placeholder, send_ms),
        )

    async def achord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Async twin of `chord_start`."""
        return self.chord_start(queue, chord_id, size, callback, placeholder)

    def chord_arm(self, queue: str, chord_id: str) -> bool:
        """Every member was sent; see `Broker.chord_arm`."""
        age = self.settings.dead_max_age_ms
        return self._run(queue, lambda q, now: q.chords.arm(now, chord_id, age))

    async def achord_arm(self, queue: str, chord_id: str) -> bool:
        """Async twin of `chord_arm`."""
        return self.chord_arm(queue, chord_id)

    def _deliver_chord_failures(self, queue: str) -> int:
        delivered = 0
        while notes := self._run(queue, lambda q, _: q.chords.take_notes(100)):
            for chord, chord_queue, outcome in notes.values():

                def abort(q: QueueState, now: int, c: str = chord, o: bytes = outcome) -> bool:
                    return q.chords.abort(now, c, o)

                self._run(chord_queue, abort)
            delivered += len(notes)
        return delivered

    async def adeliver_chord_failures(self, queue: str) -> int:
        """Fail the chords of `queue`'s dead members; see `Broker.adeliver_chord_failures`."""
        return self._deliver_chord_failures(queue)

    async def chord_part(self, queue: str, chord_id: str, index: int, result: bytes) -> int:
        """Count a member's result; see `Broker.chord_part`."""
        return self._run(queue, lambda q, now: q.chords.part(now, chord_id, index, result))

    async def chord_abort(self, queue: str, chord_id: str, outcome: bytes) -> bool:
        """Fail a chord; see `Broker.chord_abort`."""
        return self._run(queue, lambda q, now: q.chords.abort(now, chord_id, outcome))

    def purge_ready(self, queue: str, *, delayed: bool = False, limit: int = 1000) -> int:
        """Delete a batch of the queue's waiting jobs; see `Admin.purge_ready`."""
        check_limit(limit)
        return self._run(queue, lambda q, _: memory_admin.purge_waiting(q, delayed, limit))

    async def apurge_ready(self, queue: str, *, delayed: bool = False, limit: int = 1000) -> int:
        """Async twin of `purge_ready`."""
        return self.purge_ready(queue, delayed=delayed, limit=limit)

    def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause or resume a queue (a paused one hands out no job); False: it already was so."""

        def change(q: QueueState, _: int) -> bool:
            self._known.add(q.name)
            return memory_admin.set_paused(q, paused)

        return self._run(queue, change)

    async def aset_paused(self, queue: str, paused: bool) -> bool:
        """Async twin of `set_paused`."""
        return self.set_paused(queue, paused)

    def sample_throughput(self, queue: str, *, now: float | None = None) -> Sampled:
        """File the queue's counters for its series; see `Admin.sample_throughput`."""

        def file(q: QueueState, now_ms: int) -> Sampled:
            at = now_ms if now is None else round(now * 1000)
            return memory_series.sample(self._series.setdefault(q.name, {}), q.stats, at)

        return self._run(queue, file)

    async def asample_throughput(self, queue: str, *, now: float | None = None) -> Sampled:
        """Async twin of `sample_throughput`."""
        return self.sample_throughput(queue, now=now)

    def read_series(self, queue: str, view: Callable[[Mapping[int, bytes], int], T]) -> T:
        """Run `view` on `queue`'s throughput samples and the broker's time (ms), under the lock."""
        check_queue_name(queue)
        with self._lock:
            return view(self._series.get(queue, {}), self._now_ms())

    @property
    def schedules(self) -> MemorySchedules:
        """The schedules and the scheduler's lease (`errands.broker.beat.ScheduleStore`)."""
        return self._schedules

    @property
    def inspector(self) -> MemoryInspector:
        """The operator's read model of this broker (`errands.broker.operator.Inspector`)."""
        return MemoryInspector(self)

    def read(self, queue: str, view: Callable[[QueueState, int], T]) -> T:
        """Run `view` on `queue`'s state and the broker's time (ms), under the lock.

        For the inspector's views: they read and change nothing.
        """
        with self._lock:
            return view(self._queue(queue), self._now_ms())

    def queue_names(self) -> list[str]:
        """Every queue producers or workers have used, sorted (for the inspector's pages)."""
        with self._lock:
            return sorted(self._known)

    def close(self) -> None:
        """Nothing to close; the data stays until the broker is dropped."""

    # Worker side ------------------------------------------------------------------------------

    async def fetch(
        self, queue: str, n: int, lease_ms: int, worker_id: str, *, limited: int | None = None
    ) -> Fetched:
        """Lease up to `n` jobs; see `Broker.fetch`."""
        settings = self.settings
        room = n if limited is None else limited
        return self._run(queue, lambda q, now: q.fetch(now, n, lease_ms, worker_id, settings, room))

    async def ack(self, queue: str, outcomes: Sequence[Outcome]) -> list[AckCode]:
        """Settle finished jobs; see `Broker.ack`."""
        settings = self.settings
        return self._run(queue, lambda q, now: q.ack(now, outcomes, settings))

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
        """Ack then fetch, each atomic (as the pipelined pair is on Redis)."""
        codes = await self.ack(queue, outcomes)
        return codes, await self.fetch(queue, n, lease_ms, worker_id, limited=limited)

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
        with self._lock:
            self._known.add(check_queue_name(queue))
        return self._run(
            queue,
            lambda q, now: q.heartbeat(now, worker_id, worker_info, leases, lease_ms, started),
        )

    async def leave(self, queue: str, worker_id: str) -> bool:
        """Take a stopping worker off `queue`'s worker list; see `Transport.leave`."""
        return self._run(queue, lambda q, _: memory_admin.leave(q, worker_id))

    async def release(self, queue: str, leases: Sequence[Lease]) -> int:
        """Give jobs back without spending an attempt."""
        return self._run(queue, lambda q, now: q.release(now, leases))

    async def report_progress(self, queue: str, reports: Sequence[ProgressReport]) -> int:
        """Store running jobs' progress; see `Transport.report_progress`."""
        return self._run(queue, lambda q, _: memory_progress.report(q, reports))

    async def maintain(self, queue: str, owner: str, lock_ms: int) -> MaintenanceReport | None:
        """Bounded housekeeping under the queue's maintenance lock (held for `lock_ms`).

        As on Redis, the lock lets its owner in again (a saturated pass runs again at once).
        """
        settings = self.settings
        return self._run(queue, lambda q, now: q.maintain(now, owner, lock_ms, settings))

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
        """`wait_for_work` on one queue, then `fetch`."""
        await self.wait_for_work([queue], timeout_s)
        return await self.fetch(queue, n, lease_ms, worker_id, limited=limited)

    async def wait_for_work(self, queues: Sequence[str], timeout_s: float) -> bool:
        """Wait for a wake token of one of `queues` for at most `timeout_s` (real seconds).

        Unlike Redis, the wait is not capped at 5 s: there is no connection to check on.
        """
        names = [check_queue_name(q) for q in queues]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.001)
        box = _Mailbox(loop)
        with self._lock:
            if self._take_wake(names):
                return True
            self._work_waiters.add(box)
        try:
            while await _wait(box, deadline):
                with self._lock:
                    if self._take_wake(names):
                        return True
            return False
        finally:
            with self._lock:
                self._work_waiters.discard(box)

    async def interrupt_wait(self, queue: str) -> None:
        """Add a wake token to `queue` and wake the waiters."""
        with self._lock:
            state = self._queue(queue)
            state.wake.add(f"interrupt:{len(state.wake)}")
            state.armed = True
            self._deliver(state)

    async def aclose(self) -> None:
        """Nothing to close."""
