"""A child process: runs the jobs its supervisor sends, on its main thread or its event loop.

Started by the supervisor as ``python -m errands.worker.child APP JOBS_FD CONTROL_FD WRITE_FD
LEVEL FORMAT JOBS_LEVEL WORKER`` (the supervisor's logging, `errands.observe.logging.
child_arguments`, so that its job lines and ``ctx.log`` lines show up like its own, written to
the stderr it inherited: a job's line costs no message to the supervisor). The
main thread reads jobs itself when it is free, so a job sent to an idle child starts with no
thread in between; a reader thread takes cancel requests at once, even during a job. Sync jobs run
one at a time on the main thread, where SIGALRM raises `SoftTimeLimitExceeded` at the soft
limit; async jobs run concurrently on an event loop in a second thread and are cancelled at theirs.
Outcomes go back in batches: the main thread sends them when it has two jobs or fewer left
queued (so the supervisor tops it up before it runs dry), every 64 outcomes, or when the oldest
waited 3 ms; a flusher thread sends any that waited 5 ms behind a long job. No thread wakes per
job, which is what a quick job would otherwise pay for most, and an idle child sleeps: the
flusher is woken only when a job starts with outcomes still unsent. What a job reports of its
progress goes to the supervisor throttled (`errands.worker.progress`), from the thread that
reported it or a timer thread the first throttled report starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from types import FrameType
from typing import NoReturn

import msgspec

from errands.broker.transport import DirectLine, DirectWaits
from errands.broker.types import AckCode, Outcome
from errands.errors import BrokerError, SoftTimeLimitExceeded
from errands.loading import load_app
from errands.observe.logging import configure_child
from errands.observe.throttle import ThrottleFilter
from errands.worker.execution import Executor, Prepared
from errands.worker.outcome_log import OutcomeLog
from errands.worker.progress import ProgressOutbox, Reports
from errands.worker.protocol import (
    Cancel,
    Died,
    Done,
    Dropped,
    Finished,
    FrameReader,
    Job,
    Progressed,
    Ready,
    Run,
    Stop,
    Took,
    Wait,
    WaitEnded,
    decode_to_child,
    encode,
)

__all__ = ["Child", "main"]

log = logging.getLogger("errands.worker")

# With jobs queued, the jobs pipe is looked at (a select) when few are left, or every so many
# jobs (so a Stop is seen soon); with few left, outcomes also go back at once, so that the
# supervisor, which tops a child up when it is half empty, hears in time.
_LOOK_BELOW = 2
_LOOK_EVERY = 16
_FLUSH_COUNT = 64
# Under load, outcomes go back once the oldest has waited _FLUSH_SOON_S (seconds; checked between
# jobs), or _FLUSH_LATE_S behind a long job (the flusher thread). Each send wakes the supervisor,
# which holds acks for up to 10 ms anyway (_ACK_DELAY_S, to ride along with a fetch): sending more
# often costs its CPU and settles nothing sooner, so both stay a fraction of those 10 ms.
# The measurements: docs/performance.md.
_FLUSH_SOON_S = 0.003
_FLUSH_LATE_S = 0.005


class _SignalSoftLimit:
    """Arms SIGALRM for the soft limit of the sync job on the main thread."""

    def __init__(self) -> None:
        self.armed = False
        self.limit_s = 0.0
        signal.signal(signal.SIGALRM, self._fire)

    def _fire(self, _signum: int, _frame: FrameType | None) -> None:
        # Only inside the task: an alarm that lands after it returned must not hit errands code.
        if self.armed:
            self.armed = False
            raise SoftTimeLimitExceeded(f"soft time limit of {self.limit_s:g}s exceeded")

    # A class-based context manager: cheaper per job than a generator-based one.
    def __call__(self, seconds: float) -> _SignalSoftLimit:
        self.limit_s = seconds
        return self

    def __enter__(self) -> None:
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.limit_s)

    def __exit__(self, *_exc: object) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


class Child:
    """The loop of one child process.

    Args:
        app_spec: ``module:app`` to import.
        read_fd: frames from the supervisor.
        write_fd: frames to the supervisor.
    """

    def __init__(self, app_spec: str, jobs_fd: int, control_fd: int, write_fd: int) -> None:
        self.app = load_app(app_spec)
        self._jobs = FrameReader(jobs_fd)
        self._control = FrameReader(control_fd)
        self._write_fd = write_fd
        self._cancelled: set[str] = set()
        # Waiting on the broker itself (`DirectWaits`), for the `Wait` it was opened for.
        self._line: DirectLine | None = None
        self._line_for: Wait | None = None
        self._waiting = False
        self._own: dict[str, str] = {}  # job id -> lease token, for the jobs it took itself
        # Progress reports go to the supervisor throttled; a job that reports none pays nothing.
        self._progress = ProgressOutbox(self._send_progress)
        self._executor = Executor(
            self.app, self._cancelled.__contains__, self._progress, OutcomeLog()
        )
        self._outbox: list[Finished] = []
        self._oldest = 0.0  # monotonic time of the oldest unsent outcome
        self._out_lock = threading.Lock()
        self._flusher_armed = threading.Event()  # set while outcomes may wait behind a job
        self._send_lock = threading.Lock()
        self._async_flush_armed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_running = 0
        self._async_idle = threading.Condition()

    # Threads -----------------------------------------------------------------------------------

    def _read_control_forever(self) -> None:
        while True:
            body = self._control.read()
            if body is None:
                _supervisor_gone()
            message = decode_to_child(body)
            if isinstance(message, Cancel):
                self._cancelled.update(message.ids)

    def _next(self, wait: bool) -> Run | Stop | Wait | None:
        """The next job message; None when there is none and `wait` is false."""
        if not wait and not self._jobs.ready():
            return None
        body = self._jobs.read()
        if body is None:
            _supervisor_gone()
        message = decode_to_child(body)
        if isinstance(message, Cancel):  # they come on the control pipe; accepted here too
            self._cancelled.update(message.ids)
            return None
        return message

    def _flush_forever(self) -> None:
        while True:
            self._flusher_armed.wait()
            time.sleep(_FLUSH_LATE_S)
            if self._outbox and time.monotonic() - self._oldest >= _FLUSH_LATE_S:
                self.flush()
            with self._out_lock:
                # Disarmed only when nothing is left: a job that starts with outcomes unsent
                # arms it again (see run).
                if not self._outbox:
                    self._flusher_armed.clear()

    def flush(self) -> None:
        """Send every outcome not sent yet, in one message."""
        with self._out_lock:
            batch, self._outbox = self._outbox, []
        if batch:
            self._send(Done(batch))

    def _send_progress(self, reports: Reports) -> None:
        self._send(Progressed([job_id for job_id, _ in reports], [r for _, r in reports]))

    def _send(self, message: Done | Died | Dropped | Ready | Took | WaitEnded | Progressed) -> None:
        data = memoryview(encode(message))
        with self._send_lock:
            while data:
                written = os.write(self._write_fd, data)
                data = data[written:]

    def _finished(self, outcome: Finished) -> None:
        self._own.pop(outcome.id, None)  # an async job this child took: the supervisor acks it
        with self._out_lock:
            if not self._outbox:
                self._oldest = time.monotonic()
            self._outbox.append(outcome)
        self._cancelled.discard(outcome.id)

    # Async jobs -----------------------------------------------------------------------------------

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="errands-async", daemon=True).start()
            self._loop = loop
        return self._loop

    def _start_async(self, prepared: Prepared) -> None:
        with self._async_idle:
            self._async_running += 1
        future = asyncio.run_coroutine_threadsafe(
            self._executor.run_async(prepared), self._event_loop()
        )
        future.add_done_callback(lambda done: self._async_done(done, prepared.job))

    def _async_done(self, future: Future[Finished], job: Job) -> None:
        try:
            finished = future.result()
        except BaseException as error:  # noqa: BLE001 - an outcome must come back, whatever
            finished = Executor.failed(job.id, job.attempt, None, error, retry=False)
        self._finished(finished)
        loop = self._loop
        if loop is not None and not self._async_flush_armed:
            # One send for every async job that ends in this turn of the event loop.
            self._async_flush_armed = True
            loop.call_soon_threadsafe(self._flush_async)
        with self._async_idle:
            self._async_running -= 1
            self._async_idle.notify_all()

    def _flush_async(self) -> None:
        self._async_flush_armed = False
        self.flush()

    # Main loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until told to stop (or until the supervisor disappears)."""
        # The supervisor decides when we stop (Stop, or SIGKILL): a SIGTERM sent to the whole
        # process group by a service manager must not cut a running job short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soft_limit = _SignalSoftLimit()
        threading.Thread(
            target=self._read_control_forever, name="errands-control", daemon=True
        ).start()
        threading.Thread(target=self._flush_forever, name="errands-flusher", daemon=True).start()
        self._send(Ready(os.getpid()))
        pending: deque[Prepared] = deque()
        unseen = 0  # jobs run since the jobs pipe was last looked at
        while True:
            if not pending and self._waiting and not self._jobs.ready():
                message = self._wait_on_broker(pending)
            elif len(pending) <= _LOOK_BELOW or unseen >= _LOOK_EVERY:
                message = self._next(wait=not pending)
                unseen = 0
            else:
                message = None  # plenty queued: a look (a syscall) can wait a few jobs
            if isinstance(message, Wait):
                self._start_waiting(message)
            if isinstance(message, Stop):
                self.flush()
                self._send(Dropped([p.job.id for p in pending]))
                break
            if isinstance(message, Run):
                self._waiting = False  # the supervisor feeds us again
                self._accept(message.jobs, pending)
            if pending:
                unseen += 1
                if self._outbox and not self._flusher_armed.is_set():
                    self._flusher_armed.set()  # they may wait behind this job
                finished = self._executor.run_sync(pending.popleft(), soft_limit)
                self._finished(self._settle_own(finished, bool(pending)))
                if (
                    len(pending) <= _LOOK_BELOW  # running low: the supervisor refills us now
                    or len(self._outbox) >= _FLUSH_COUNT
                    or time.monotonic() - self._oldest >= _FLUSH_SOON_S
                ):
                    self.flush()
        with self._async_idle:
            while self._async_running:
                self._async_idle.wait()
        self.flush()

    # Waiting on Redis ---------------------------------------------------------------------------

    def _start_waiting(self, wait: Wait) -> None:
        if self._line is not None and self._line_for == wait:
            self._waiting = True
            return
        self._close_line()
        broker = self.app.broker
        line = None
        if isinstance(broker, DirectWaits):
            line = broker.direct_line(wait.queue, wait.lease_ms, wait.worker_id)
        if line is None:
            self._send(WaitEnded("this broker offers no direct line to its workers' children"))
            return
        self._line, self._line_for = line, wait
        self._waiting = True

    def _close_line(self) -> None:
        if self._line is not None:
            self._line.close()
        self._line = self._line_for = None

    def _stop_waiting(self, reason: str) -> None:
        self._close_line()
        self._waiting = False
        self._send(WaitEnded(reason))

    def _wait_on_broker(self, pending: deque[Prepared]) -> Run | Stop | Wait | None:
        """Lease a job from the broker, or take the next message: whichever comes first."""
        assert self._line is not None
        assert self._line_for is not None
        queue = self._line_for.queue
        try:
            fetched, message_waiting = self._line.lease(self._jobs.fd)
        except BrokerError as error:
            log.warning("waiting on the broker failed (%s); the supervisor waits instead", error)
            self._stop_waiting(str(error))
            return None
        if fetched.died:  # its fetch reaped jobs to death: the supervisor tells the middleware
            ids, outcomes = zip(*fetched.died, strict=True)
            self._send(Died(queue, list(ids), list(outcomes)))
        if fetched.jobs:
            jobs = [Job(d.id, d.payload, d.attempt) for d in fetched.jobs]
            tokens = [d.token for d in fetched.jobs]
            self._own.update(zip([j.id for j in jobs], tokens, strict=True))
            self._send(Took(queue, jobs, tokens, fetched.more))
            self._accept(jobs, pending)
            if self._async_running:
                # Async jobs run beside the loop: waiting on for more would take them one by
                # one past the child's async limit. The supervisor feeds it meanwhile.
                self._waiting = False
                self._send(WaitEnded("running async jobs"))
        return self._next(wait=False) if message_waiting else None

    def _settle_own(self, finished: Finished, more_queued: bool) -> Finished:
        """Acknowledge a job this child took, when nothing else is to be done about it."""
        token = self._own.pop(finished.id, None)
        line, wait = self._line, self._line_for
        if (
            token is None
            or line is None
            or wait is None
            or more_queued
            # Back to delayed (a retry, a RateLimited, an unknown task): the supervisor must
            # know when to look again.
            or finished.kind in ("retrying", "limited", "deferred")
            or finished.follow_ups  # they go first, and the supervisor sends them
        ):
            return finished
        outcome = Outcome(
            finished.id, token, finished.kind, finished.outcome, finished.retry_delay_ms
        )
        try:
            code = line.ack(outcome)
        except BrokerError as error:
            log.warning("acknowledging job %s failed (%s); the supervisor will", finished.id, error)
            self._stop_waiting(str(error))
            return finished
        if code is AckCode.STALE:
            log.warning("job %s finished after its lease was lost: it may run twice", finished.id)
        elif code is AckCode.DEAD:  # the supervisor tells the middleware, and fails its chord
            self._send(Died(wait.queue, [finished.id], [finished.outcome]))
        return msgspec.structs.replace(finished, acked=True, outcome=b"")

    # Jobs -----------------------------------------------------------------------------------------

    def _accept(self, jobs: list[Job], pending: deque[Prepared]) -> None:
        """Start async jobs at once (their time runs from now); queue sync ones in order."""
        for job in jobs:
            prepared = self._executor.prepare(job)
            if isinstance(prepared, Finished):
                self._finished(prepared)
            elif prepared.is_async:
                self._start_async(prepared)
            else:
                pending.append(prepared)
        if self._outbox and not pending:
            self.flush()


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m errands.worker.child APP JOBS CONTROL WRITE [LOGGING...]``."""
    args = argv if argv is not None else sys.argv[1:]
    app_spec, jobs_fd, control_fd, write_fd = args[:4]
    configure_child(args[4:])
    log.addFilter(ThrottleFilter())  # a child that loses Redis says so every few seconds
    Child(app_spec, int(jobs_fd), int(control_fd), int(write_fd)).run()


def _supervisor_gone() -> NoReturn:
    # Its leases will expire and the jobs go to other workers.
    os._exit(0)


if __name__ == "__main__":
    main()
