"""The in-process pools: ``--pool solo`` (one job at a time) and ``--pool async`` (many).

Jobs run in the supervisor's own process, but never on its event loop: async tasks run on an
event loop of their own in a second thread, sync tasks on threads. A task that blocks (a
``time.sleep`` in an ``async def``) stalls the other async jobs, not the supervisor, which goes
on renewing leases. There is no process to kill, so only the soft time limit applies (raised
inside the task's thread, or a cancellation for async tasks); a job past its hard limit is
logged and left to finish. Use them for debugging (solo) and for I/O-bound async tasks (async).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from errands.errors import SoftTimeLimitExceeded
from errands.worker.execution import Executor, Prepared
from errands.worker.outcome_log import OutcomeLog
from errands.worker.pool import Assigned, PoolEvents
from errands.worker.progress import ProgressOutbox, Reports
from errands.worker.protocol import Finished, Wait

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["InProcessPool"]

#: How long closing waits for the tasks' loop thread to stop (seconds).
_LOOP_STOP_S = 2.0

log = logging.getLogger("errands.worker")


@contextmanager
def _thread_soft_limit(seconds: float) -> Iterator[None]:
    """Raise `SoftTimeLimitExceeded` in this thread after `seconds` (at its next bytecode)."""
    thread_id = threading.get_ident()
    armed = threading.Event()
    armed.set()

    def fire() -> None:
        if armed.is_set():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread_id), ctypes.py_object(SoftTimeLimitExceeded)
            )

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        armed.clear()
        timer.cancel()


class InProcessPool:
    """Runs jobs in this process, at most `concurrency` at once.

    Args:
        app: the app whose tasks run.
        events: where outcomes and given-back jobs go.
        concurrency: jobs at once (1 for ``--pool solo``).
    """

    def __init__(self, app: App, events: PoolEvents, *, concurrency: int) -> None:
        self.app = app
        self.events = events
        self.concurrency = concurrency
        self._cancelled: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the supervisor's, set by start
        progress = ProgressOutbox(self._send_progress)
        self._executor = Executor(app, self._cancelled.__contains__, progress, OutcomeLog())
        self._threads = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="errands-job"
        )
        self._running: dict[str, tuple[asyncio.Task[None], Assigned, float]] = {}
        self._task_loop: asyncio.AbstractEventLoop | None = None  # async tasks run there
        self._task_thread: threading.Thread | None = None  # runs the tasks' loop
        self._stopping = False
        self._warned: set[str] = set()
        self.abandoned = False  # jobs were given back while their threads still ran

    async def start(self) -> None:
        """Start the event loop thread that async tasks run on."""
        self._loop = asyncio.get_running_loop()
        loop = asyncio.new_event_loop()
        self._task_thread = threading.Thread(
            target=loop.run_forever, name="errands-tasks", daemon=True
        )
        self._task_thread.start()
        self._task_loop = loop

    def _send_progress(self, reports: Reports) -> None:
        # From a job's thread or the tasks' loop: the supervisor's loop takes it from here.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.events.progressed, reports)

    def free_slots(self) -> int:
        """Free places, with no prefetch: a job waits in Redis, not in this process."""
        return 0 if self._stopping else self.concurrency - len(self._running)

    def idle_slots(self) -> int:
        """Every free place starts its job at once (there is no prefetch here)."""
        return self.free_slots()

    def hungry(self) -> bool:
        """Any free place is worth a fetch: nothing waits here in advance."""
        return self.free_slots() > 0

    def submit(self, jobs: Sequence[Assigned]) -> None:
        """Start each job as an asyncio task."""
        for assigned in jobs:
            task = asyncio.create_task(self._run(assigned), name=f"errands-job-{assigned.job.id}")
            self._running[assigned.job.id] = (task, assigned, time.monotonic())

    def wait_for_work(self, wait: Wait) -> bool:
        """No: jobs run in this process, so the supervisor's own wait is as close as it gets."""
        return False

    async def _run(self, assigned: Assigned) -> None:
        prepared = self._executor.prepare(assigned.job)
        try:
            if isinstance(prepared, Finished):
                outcome = prepared
            elif prepared.is_async:
                outcome = await self._run_async(prepared)
            else:
                loop = asyncio.get_running_loop()
                outcome = await loop.run_in_executor(self._threads, self._run_sync, prepared)
        finally:
            self._running.pop(assigned.job.id, None)
            self._cancelled.discard(assigned.job.id)
        self.events.finished([outcome])

    def _run_sync(self, prepared: Prepared) -> Finished:
        return self._executor.run_sync(prepared, _thread_soft_limit)

    async def _run_async(self, prepared: Prepared) -> Finished:
        """Run an async task on the tasks' loop; cancelling this cancels it there."""
        if self._task_loop is None:
            raise RuntimeError("the pool was not started")
        running = asyncio.run_coroutine_threadsafe(
            self._executor.run_async(prepared), self._task_loop
        )
        return await asyncio.wrap_future(running)

    def started(self) -> set[str]:
        """Every job held: each starts the moment it is submitted."""
        return set(self._running)

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Mark jobs as asked to stop (`ctx.is_cancelled()`)."""
        self._cancelled.update(job_id for job_id in job_ids if job_id in self._running)

    async def enforce_limits(self) -> None:
        """Log jobs past their hard limit: an in-process job cannot be killed."""
        now = time.monotonic()
        for job_id, (_, assigned, started) in self._running.items():
            if now - started > assigned.hard_limit_s and job_id not in self._warned:
                self._warned.add(job_id)
                log.error(
                    "job %s is past its hard time limit of %gs; the %s pool cannot kill it: use "
                    "--pool process to enforce hard limits",
                    job_id,
                    assigned.hard_limit_s,
                    "solo" if self.concurrency == 1 else "async",
                )

    def stop(self) -> None:
        """Start nothing more; running jobs finish."""
        self._stopping = True

    async def kill(self) -> None:
        """Give back every running job; async ones are cancelled, threads are abandoned."""
        self._stopping = True
        held = list(self._running.values())
        self._running.clear()
        for task, assigned, _ in held:
            task.cancel()
            self.abandoned = self.abandoned or not assigned.is_async
        if held:
            self.events.give_back([assigned.job.id for _, assigned, _ in held])
        self._threads.shutdown(wait=False, cancel_futures=True)

    def idle(self) -> bool:
        """True when nothing runs."""
        return not self._running

    async def close(self) -> None:
        """Release the thread pool and stop the tasks' loop."""
        self._threads.shutdown(wait=False)
        loop, self._task_loop = self._task_loop, None
        thread, self._task_thread = self._task_thread, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                # Bounded: a task that blocks its loop's thread must not hold the exit up.
                await asyncio.to_thread(thread.join, _LOOP_STOP_S)
            if not loop.is_running():
                loop.close()
