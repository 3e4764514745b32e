"""The process pool: N child processes run user code; the supervisor watches their time.

A child that runs past a job's hard time limit is killed with SIGKILL and replaced; that job is
charged a `TimeLimitExceeded` attempt, the other jobs the child held are given back uncharged.
A child that dies on its own (segfault, os._exit, OOM kill) charges `WorkerLost` to the jobs it
was running. Either way the job follows its retry policy and is never silently acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from errands.errors import ConfigurationError, TimeLimitExceeded, WorkerLost
from errands.observe.logging import child_arguments
from errands.task import TaskOptions
from errands.worker.execution import Executor
from errands.worker.outcome_log import OutcomeLog
from errands.worker.pool import Assigned, PoolEvents
from errands.worker.protocol import (
    Cancel,
    Died,
    Done,
    Dropped,
    Progressed,
    Ready,
    Run,
    Stop,
    Took,
    Wait,
    WaitEnded,
    body_length,
    decode_from_child,
    encode,
    header_size,
)

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["ProcessPool"]

log = logging.getLogger("errands.worker")

_START_TIMEOUT_S = 60.0
# The adaptive prefetch keeps this much work queued on each child (seconds, at the mean run time
# of its recent jobs; 1 to 100 jobs, see _sync_depth). The supervisor tops a child up when half
# of it is left, and a refill (the child's outcomes reach the supervisor, a fetch, a pipe write)
# waits for the supervisor's turn and a Redis round trip: that half must outlast a refill on a
# busy 2-core machine, or the child runs dry. The measurements: docs/performance.md.
_QUEUED_WORK_S = 0.02
_WAIT_AGAIN_AFTER_S = 2.0  # a child whose wait on Redis failed waits through the supervisor


@dataclass(slots=True)
class _Slot:
    assigned: Assigned
    options: TaskOptions | None
    since: float  # monotonic: when it was sent (async) or believed to start (sync head)


@dataclass(eq=False)
class _Child:
    index: int
    proc: asyncio.subprocess.Process
    writer: asyncio.WriteTransport  # jobs, read by the child's main thread when it is free
    control: asyncio.WriteTransport  # cancel requests, read at once by a thread of the child
    reader: _FrameProtocol
    sync_jobs: deque[_Slot] = field(default_factory=deque)
    async_jobs: dict[str, _Slot] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    kill_reason: tuple[str, str] | None = None  # ("time_limit", job id) or ("shutdown", "")
    stopping: bool = False
    waiting: bool = False  # told to wait for work on Redis itself (a `Wait` sent)
    wait_again_at: float = 0.0  # monotonic: after a failed wait, not before this

    def send(self, message: Run | Cancel | Stop | Wait) -> None:
        if isinstance(message, Run | Stop):
            self.waiting = False  # the message ends its wait on Redis
        transport = self.control if isinstance(message, Cancel) else self.writer
        if not transport.is_closing():
            transport.write(encode(message))

    def holds(self, job_id: str) -> bool:
        return job_id in self.async_jobs or any(s.assigned.job.id == job_id for s in self.sync_jobs)


class _FrameProtocol(asyncio.Protocol):
    """Frames from a child, each handled the moment it arrives (no task switch per frame)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._buffer = bytearray()
        self._handler: Callable[[bytes], None] | None = None
        self._early: list[bytes] = []
        self.closed: asyncio.Future[None] = loop.create_future()

    def handle(self, handler: Callable[[bytes], None]) -> None:
        """Pass every frame body to `handler`, starting with any that came before it was set."""
        self._handler = handler
        early, self._early = self._early, []
        for body in early:
            handler(body)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        size = header_size()
        while len(buffer) >= size:
            end = size + body_length(bytes(buffer[:size]))
            if len(buffer) < end:
                break
            body = bytes(buffer[size:end])
            del buffer[:end]
            if self._handler is None:
                self._early.append(body)
            else:
                self._handler(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ProcessPool:
    """Child processes that run the jobs.

    Args:
        app: the app (for task options: retry policy of killed jobs).
        app_spec: ``module:app``, imported by each child.
        events: where outcomes and given-back jobs go.
        concurrency: the number of children.
        prefetch: sync jobs queued per child beyond the running one; None adapts it to the
            job duration (many for quick jobs, none for jobs over a second).
        async_per_child: async jobs run concurrently per child.
    """

    def __init__(
        self,
        app: App,
        app_spec: str,
        events: PoolEvents,
        *,
        concurrency: int,
        prefetch: int | None = None,
        async_per_child: int = 100,
    ) -> None:
        self.app = app
        self.app_spec = app_spec
        self.events = events
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.async_per_child = async_per_child
        self.children: list[_Child] = []
        self._stopping = False
        self._mean_job_s: float | None = None  # unknown until a sync job ends
        self._async_share = 0.0  # the share of recent jobs that were async (a moving average)
        self._exit_tasks: set[asyncio.Task[None]] = set()

    # Starting -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every child and wait until each has imported the app."""
        self.children = [await self._spawn(i) for i in range(self.concurrency)]
        await self._await_ready(self.children)

    async def _await_ready(self, children: Sequence[_Child]) -> None:
        waits = [asyncio.ensure_future(c.ready.wait()) for c in children]
        exits = [asyncio.ensure_future(c.exited.wait()) for c in children]
        try:
            async with asyncio.timeout(_START_TIMEOUT_S):
                while not all(c.ready.is_set() for c in children):
                    await asyncio.wait(waits + exits, return_when=asyncio.FIRST_COMPLETED)
                    if any(c.exited.is_set() and not c.ready.is_set() for c in children):
                        raise ConfigurationError(
                            f"a worker child exited while importing {self.app_spec!r}: its error "
                            "is printed above; fix it and start the worker again"
                        )
        finally:
            for waiter in waits + exits:
                waiter.cancel()

    async def _spawn(self, index: int) -> _Child:
        loop = asyncio.get_running_loop()
        to_child_r, to_child_w = os.pipe()
        control_r, control_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "errands.worker.child",
            self.app_spec,
            str(to_child_r),
            str(control_r),
            str(from_child_w),
            *child_arguments(),
            pass_fds=(to_child_r, control_r, from_child_w),
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it decides
        )
        os.close(to_child_r)
        os.close(control_r)
        os.close(from_child_w)
        reader = _FrameProtocol(loop)
        await loop.connect_read_pipe(lambda: reader, os.fdopen(from_child_r, "rb", 0))
        transport, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(to_child_w, "wb", 0)
        )
        control, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(control_w, "wb", 0))
        child = _Child(index, proc, transport, control, reader)
        reader.handle(lambda body: self._on_message(child, decode_from_child(body)))
        task = asyncio.create_task(self._serve(child), name=f"errands-child-{index}")
        self._exit_tasks.add(task)
        task.add_done_callback(self._exit_tasks.discard)
        return child

    # Reading a child ------------------------------------------------------------------------------

    async def _serve(self, child: _Child) -> None:
        await child.reader.closed
        await child.proc.wait()
        child.writer.close()
        child.control.close()
        self._on_exit(child)
        child.exited.set()

    def _on_message(
        self, child: _Child, message: Ready | Done | Dropped | Took | Died | WaitEnded | Progressed
    ) -> None:
        if isinstance(message, Ready):
            child.ready.set()
        elif isinstance(message, Died):
            self.events.died(message.queue, list(zip(message.ids, message.outcomes, strict=True)))
        elif isinstance(message, Took):
            took = self.events.took(message.queue, message.jobs, message.tokens, message.more)
            self._adopt(child, took)
        elif isinstance(message, WaitEnded):
            # Redis failed it: the supervisor waits (and retries) for a while instead.
            child.waiting = False
            child.wait_again_at = time.monotonic() + _WAIT_AGAIN_AFTER_S
            self.events.wait_ended()
        elif isinstance(message, Done):
            now = time.monotonic()
            for result in message.results:
                self._forget(child, result.id, now)
            self.events.finished(message.results)
        elif isinstance(message, Progressed):  # after Done: outcomes pay no test for it
            self.events.progressed(list(zip(message.ids, message.records, strict=True)))
        else:
            for job_id in message.ids:
                self._forget(child, job_id, time.monotonic())
            self.events.give_back(message.ids)

    def _forget(self, child: _Child, job_id: str, now: float) -> None:
        if child.async_jobs.pop(job_id, None) is not None:
            return
        if child.sync_jobs and child.sync_jobs[0].assigned.job.id == job_id:
            head = child.sync_jobs.popleft()
            took = max(now - head.since, 0.0)
            mean = self._mean_job_s
            self._mean_job_s = took if mean is None else mean + 0.05 * (took - mean)
            if child.sync_jobs:
                child.sync_jobs[0].since = now  # the next one starts now
            return
        child.sync_jobs = deque(s for s in child.sync_jobs if s.assigned.job.id != job_id)

    def _on_exit(self, child: _Child) -> None:
        """Settle every job the child held, then replace it unless the pool is stopping."""
        reason = child.kill_reason
        code = child.proc.returncode
        charged: list[tuple[_Slot, BaseException]] = []
        released: list[str] = []
        running = list(child.async_jobs.values())
        queued = list(child.sync_jobs)
        if queued:
            running.append(queued.pop(0))
        if reason is not None and reason[0] == "time_limit":
            for slot in running + queued:
                if slot.assigned.job.id == reason[1]:
                    error = TimeLimitExceeded(
                        f"the job ran past its hard time limit of {slot.assigned.hard_limit_s:g}s "
                        "and its process was killed"
                    )
                    charged.append((slot, error))
                else:
                    released.append(slot.assigned.job.id)
        elif reason is not None:  # shutdown: nothing is charged
            released = [slot.assigned.job.id for slot in running + queued]
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            lost = WorkerLost(f"the process running this job died ({how})")
            charged = [(slot, lost) for slot in running]
            released = [slot.assigned.job.id for slot in queued]
            if running or code:
                log.error(
                    "worker child %s died (%s) running %d job(s)", child.index, how, len(running)
                )
        outcomes = [
            Executor.failed(s.assigned.job.id, s.assigned.job.attempt, s.options, e, tb="")
            for s, e in charged
        ]
        for (slot, _), outcome in zip(charged, outcomes, strict=True):
            OutcomeLog().settled(slot.assigned, outcome, time.monotonic() - slot.since)
        child.sync_jobs.clear()
        child.async_jobs.clear()
        if outcomes:
            self.events.finished(outcomes)
        if released:
            self.events.give_back(released)
        if not self._stopping and child in self.children:
            replacement = asyncio.ensure_future(self._replace(child))
            replacement.add_done_callback(lambda _: None)

    async def _replace(self, child: _Child) -> None:
        fresh = await self._spawn(child.index)
        self.children[self.children.index(child)] = fresh
        try:
            await self._await_ready([fresh])
        except ConfigurationError:
            log.exception("a replacement worker child could not start")

    # Feeding -------------------------------------------------------------------------------------

    def _sync_depth(self) -> int:
        if self.prefetch is not None:
            return 1 + self.prefetch
        mean = self._mean_job_s
        if mean is None:
            # Nothing ended yet: one job queued behind the running one until the first job
            # says how long they take. Leasing a full prefetch of long jobs to a worker that
            # may die before it ends any would expose them all.
            return 2
        if mean > 1.0:
            return 1
        return 1 + max(1, min(100, int(_QUEUED_WORK_S / max(mean, 1e-6))))

    def _live(self) -> list[_Child]:
        return [
            c
            for c in self.children
            if c.ready.is_set() and not c.exited.is_set() and not c.kill_reason
        ]

    def free_slots(self) -> int:
        """Free sync slots (with prefetch), plus async slots in the share of async jobs seen.

        A fetch cannot choose sync or async jobs, so async room counts only as far as recent
        jobs were async: a queue of long sync jobs is not leased a hundred at a time.
        """
        if self._stopping:
            return 0
        depth = self._sync_depth()
        free = 0
        for child in self._live():
            free += max(depth - len(child.sync_jobs), 0)
            if self._async_share > 0.0:
                room = max(self.async_per_child - len(child.async_jobs), 0)
                free += math.ceil(room * self._async_share)
        return free

    def idle_slots(self) -> int:
        """Children with no sync job: any job sent there starts at once.

        Async room is not counted: a fetch cannot tell a sync job from an async one, and a
        sync job of a limited task sent to a child busy with another would wait there.
        """
        if self._stopping:
            return 0
        return sum(1 for child in self._live() if not child.sync_jobs)

    def hungry(self) -> bool:
        """True when a child has at most half its sync depth (or async slots) left queued.

        Fetching then, not at every finished job, moves jobs in batches: one Redis round trip
        and one pipe write carry many jobs, and the child never runs dry meanwhile.
        """
        if self._stopping:
            return False
        low = self._sync_depth() // 2
        async_low = self.async_per_child // 2 if self._async_share > 0.1 else -1
        return any(
            len(child.sync_jobs) <= low or len(child.async_jobs) <= async_low
            for child in self._live()
        )

    def submit(self, jobs: Sequence[Assigned]) -> None:
        """Send jobs to the least loaded children, one message per child.

        Once the pool is stopping they are given back: a fetch that was under way when the stop
        came must not reach a child that has been told to stop, which exits without reading them.
        """
        live = [] if self._stopping else self._live()
        if not live:
            self.events.give_back([a.job.id for a in jobs])
            return
        batches: dict[int, list[Assigned]] = {}
        now = time.monotonic()
        if self.app.limiters:
            # A limiter let these out to start now: they go first, to the idle children.
            jobs = sorted(jobs, key=self._unlimited)
        for assigned in jobs:
            self._async_share += 0.1 * (float(assigned.is_async) - self._async_share)
            if assigned.is_async:
                child = min(live, key=lambda c: len(c.async_jobs))
            else:
                child = min(live, key=lambda c: len(c.sync_jobs))
            self._track(child, assigned, now)
            batches.setdefault(child.index, []).append(assigned)
        by_index = {c.index: c for c in live}
        for index, batch in batches.items():
            by_index[index].send(Run([a.job for a in batch]))

    def _unlimited(self, assigned: Assigned) -> bool:
        task = self.app.tasks.get(assigned.task)
        return task is None or not task.options.limiters

    def _adopt(self, child: _Child, jobs: Sequence[Assigned]) -> None:
        """Track jobs a child leased itself, as if they had been sent to it."""
        now = time.monotonic()
        for assigned in jobs:
            self._track(child, assigned, now)

    def _track(self, child: _Child, assigned: Assigned, now: float) -> None:
        """Hold `assigned` as `child`'s: for its hard limit, cancels and the free slots."""
        task = self.app.tasks.get(assigned.task)
        slot = _Slot(assigned, task.options if task else None, now)
        if assigned.is_async:
            child.async_jobs[assigned.job.id] = slot
        else:
            child.sync_jobs.append(slot)

    def wait_for_work(self, wait: Wait) -> bool:
        """Tell each idle child to wait for work on Redis itself; True if any child waits."""
        if self._stopping:
            return False
        now = time.monotonic()
        for child in self._live():
            if child.waiting or child.sync_jobs or child.async_jobs or now < child.wait_again_at:
                continue
            child.send(wait)
            child.waiting = True
        return any(child.waiting for child in self._live())

    def started(self) -> set[str]:
        """Each child's async jobs (they start when they arrive) and the head of its sync jobs."""
        ids: set[str] = set()
        for child in self.children:
            ids.update(child.async_jobs)
            if child.sync_jobs:
                ids.add(child.sync_jobs[0].assigned.job.id)
        return ids

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Pass cancel requests to the children running those jobs."""
        for child in self._live():
            mine = [job_id for job_id in job_ids if child.holds(job_id)]
            if mine:
                child.send(Cancel(mine))

    # Limits and shutdown -------------------------------------------------------------------------

    async def enforce_limits(self) -> None:
        """Kill each child whose running job is past its hard time limit."""
        now = time.monotonic()
        for child in list(self.children):
            if child.kill_reason or child.exited.is_set():
                continue
            overdue = [
                s for s in child.async_jobs.values() if now - s.since > s.assigned.hard_limit_s
            ]
            if child.sync_jobs:
                head = child.sync_jobs[0]
                if now - head.since > head.assigned.hard_limit_s:
                    overdue.append(head)
            if overdue:
                victim = overdue[0].assigned
                log.warning(
                    "job %s ran past its hard time limit of %gs: killing its child process",
                    victim.job.id,
                    victim.hard_limit_s,
                )
                child.kill_reason = ("time_limit", victim.job.id)
                _kill(child)

    def stop(self) -> None:
        """Children finish their running jobs and give back the queued ones."""
        self._stopping = True
        for child in self.children:
            if not child.exited.is_set():
                child.stopping = True
                child.send(Stop())

    async def kill(self) -> None:
        """Kill every child; every job they held is given back uncharged."""
        self._stopping = True
        for child in self.children:
            if not child.exited.is_set():
                child.kill_reason = child.kill_reason or ("shutdown", "")
                _kill(child)
        await self.close()

    def idle(self) -> bool:
        """True when no child holds a job."""
        return all(not c.sync_jobs and not c.async_jobs for c in self.children)

    async def close(self) -> None:
        """Wait until every child has exited."""
        for child in self.children:
            await child.exited.wait()


def _kill(child: _Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.proc.send_signal(signal.SIGKILL)
