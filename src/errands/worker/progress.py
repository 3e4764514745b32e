"""How the progress a task reports reaches Redis: throttled where the job runs, batched above.

Where a job runs (a child process, or an in-process pool's threads), `ProgressOutbox` takes every
``ctx.set_progress`` and lets at most one report per job per `errands.progress.INTERVAL_S` go to
the supervisor (`Throttle` decides); a later report waits, replacing any that waited before it,
and goes when the interval is over. In the supervisor, `ProgressWriter` keeps the latest report
of each job and writes them together, one broker call per queue every `TICK_S`, under the lease
tokens the supervisor holds; a job it no longer holds (finished, given back, lost) is skipped.

A job that never reports progress costs nothing here: no message, no call, no thread (the
outbox's timer starts with the first report that has to wait). A report that cannot be
written is dropped, and the job never hears of it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence

from errands.broker.transport import Transport
from errands.broker.types import ProgressReport
from errands.errors import ErrandsError
from errands.progress import INTERVAL_S
from errands.worker.ledger import Ledger

__all__ = ["TICK_S", "Offered", "ProgressOutbox", "ProgressWriter", "Throttle"]

log = logging.getLogger("errands.worker")

#: The supervisor writes the reports that came in, at most once per this many seconds: one
#: call per queue for all of them. Shorter than `INTERVAL_S`, so a job's reports never wait
#: behind each other.
TICK_S = 0.1
_CALL_TIMEOUT_S = 10.0  # a progress write that takes longer is dropped
_WARN_EVERY_S = 60.0  # reports dropped are logged at most this often
_PRUNE_FROM = 64  # jobs remembered before the throttle forgets the ones that went quiet

Reports = Sequence[tuple[str, bytes]]  # (job id, progress record)


class Offered(enum.Enum):
    """What `Throttle.offer` did with a report."""

    SEND = "send"  # it goes now
    WAITS = "waits"  # it waits for the job's interval to end (the first to wait for it)
    REPLACED = "replaced"  # it waits, in place of a report that waited already


class Throttle:
    """At most one report per job per `interval_s`, the latest winning; the last still goes.

    A job's first report goes at once; one within `interval_s` of the last that went waits,
    replacing any that waited before it (latest wins), until `due` hands it out when the
    interval is over (the trailing edge). Pure: the caller passes the time and does the sending.

    Args:
        interval_s: the least time between two reports of one job that go.
    """

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._sent: dict[str, float] = {}  # job id -> when its last report went
        self._waiting: dict[str, bytes] = {}  # job id -> its latest report, not gone yet
        self._prune_at = _PRUNE_FROM

    def offer(self, job_id: str, record: bytes, now: float) -> Offered:
        """Take job `job_id`'s latest report at time `now` (seconds, any monotonic clock)."""
        last = self._sent.get(job_id)
        if last is not None and now - last < self.interval_s:
            replaced = job_id in self._waiting
            self._waiting[job_id] = record
            return Offered.REPLACED if replaced else Offered.WAITS
        self._waiting.pop(job_id, None)  # its interval is over: this newer one goes instead
        self._sent[job_id] = now
        if len(self._sent) >= self._prune_at:
            self._prune(now)
        return Offered.SEND

    def due(self, now: float) -> list[tuple[str, bytes]]:
        """The waiting reports whose interval is over at `now`; they count as gone now."""
        out = [
            (job_id, record)
            for job_id, record in self._waiting.items()
            if now - self._sent[job_id] >= self.interval_s
        ]
        for job_id, _ in out:
            del self._waiting[job_id]
            self._sent[job_id] = now
        return out

    def next_due(self) -> float | None:
        """When the first waiting report falls due; None when none waits."""
        if not self._waiting:
            return None
        return min(self._sent[job_id] for job_id in self._waiting) + self.interval_s

    def remembered(self) -> int:
        """Jobs it remembers (for tests: it forgets those that went quiet)."""
        return len(self._sent)

    def _prune(self, now: float) -> None:
        # A job quiet for a whole interval would go at once anyway: forgetting it changes
        # nothing, and keeps this bounded by the jobs reporting lately, not by every job seen.
        self._sent = {
            job_id: at
            for job_id, at in self._sent.items()
            if job_id in self._waiting or now - at < self.interval_s
        }
        self._prune_at = max(_PRUNE_FROM, 2 * len(self._sent))


class ProgressOutbox:
    """The progress reports of one process's jobs, throttled on their way to the supervisor.

    Safe from any thread: sync tasks report from a child's main thread or a pool's threads,
    async ones from an event loop. A report that goes now is handed to `send` by the thread that
    made it; waiting ones by a timer thread, started with the first report that has to wait,
    which sleeps while none waits. Whatever `send` raises drops the report: progress is best
    effort.

    Args:
        send: passes reports on (a pipe write to the supervisor, or a call on its loop).
        interval_s: see `Throttle`.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        send: Callable[[Reports], None],
        interval_s: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._clock = clock
        self._throttle = Throttle(interval_s)
        self._changed = threading.Condition()
        self._timer: threading.Thread | None = None
        #: Reports handed to `send` so far.
        self.sent = 0

    def offer(self, job_id: str, record: bytes) -> None:
        """Take job `job_id`'s latest report (see `errands.progress.ProgressSink`)."""
        with self._changed:
            offered = self._throttle.offer(job_id, record, self._clock())
            if offered is Offered.WAITS:
                # The timer may sleep until a later deadline, or with none: it looks again.
                # A report that replaces one changes no deadline, so a tight loop wakes nobody.
                if self._timer is None:
                    self._timer = threading.Thread(
                        target=self._run_timer, name="errands-progress", daemon=True
                    )
                    self._timer.start()
                self._changed.notify()
        if offered is Offered.SEND:
            self._deliver([(job_id, record)])

    def _run_timer(self) -> None:
        while True:
            with self._changed:
                while True:
                    now = self._clock()
                    at = self._throttle.next_due()
                    if at is not None and at <= now:
                        break
                    self._changed.wait(None if at is None else at - now)
                due = self._throttle.due(now)
            self._deliver(due)

    def _deliver(self, reports: Reports) -> None:
        try:
            self._send(reports)
        except Exception as error:  # noqa: BLE001 - a report must never fail its job
            log.debug("progress report dropped: %s", error)
            return
        self.sent += len(reports)


class ProgressWriter:
    """The supervisor's side: each job's latest report, written in one call per queue a tick.

    Args:
        broker: where the reports go (`Transport.report_progress`).
        ledger: the leases the worker holds; a report goes under its job's lease token, and
            one of a job not held any more is skipped.
        tick_s: the least time between two writes.
    """

    def __init__(self, broker: Transport, ledger: Ledger, tick_s: float = TICK_S) -> None:
        self._broker = broker
        self._ledger = ledger
        self._tick_s = tick_s
        self._pending: dict[str, bytes] = {}
        self._arrived = asyncio.Event()
        self._dropped = 0
        self._warned_at: float | None = None
        #: Reports the broker stored so far.
        self.stored = 0

    def add(self, reports: Reports) -> None:
        """Reports came from the pool: keep the latest of each job until the next write."""
        self._pending.update(reports)
        self._arrived.set()

    async def loop(self) -> None:
        """Write what comes, at most once a tick, until cancelled (it never raises)."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            await self.flush()
            await asyncio.sleep(self._tick_s)

    async def flush(self) -> int:
        """Write every report held now; returns how many the broker stored.

        A job the worker no longer holds is skipped, and a write that fails is dropped (and
        logged now and then): the next report of a job that still runs replaces it anyway.
        """
        pending, self._pending = self._pending, {}
        by_queue: dict[str, list[ProgressReport]] = {}
        for job_id, record in pending.items():
            held = self._ledger.held.get(job_id)
            if held is not None:
                by_queue.setdefault(held.queue, []).append(
                    ProgressReport(job_id, held.token, record)
                )
        if not by_queue:
            return 0
        calls = [self._broker.report_progress(queue, batch) for queue, batch in by_queue.items()]
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                answers = await asyncio.gather(*calls, return_exceptions=True)
        except TimeoutError as error:
            answers = [error] * len(calls)
        stored = 0
        for batch, answer in zip(by_queue.values(), answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer  # a cancellation: the worker is stopping
                self._drop(len(batch), answer)
            else:
                stored += answer
        self.stored += stored
        return stored

    def _drop(self, count: int, error: Exception) -> None:
        self._dropped += count
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < _WARN_EVERY_S:
            return
        self._warned_at = now
        log.warning(
            "progress of %d job(s) could not be written (%s): dropped, the jobs go on",
            self._dropped,
            error or type(error).__name__,
            exc_info=not isinstance(error, ErrandsError | TimeoutError),  # a bug: its traceback
        )
        self._dropped = 0
