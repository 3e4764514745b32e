"""The supervisor: all Redis I/O of a worker, on one asyncio loop; user code runs in its pool.

One loop exchanges with Redis: it acknowledges finished jobs and fetches as many new ones as the
pool has room for, in one round trip per queue (ack pipelined with fetch); when there is nothing
to do it blocks on the queues' wake tokens. Beside it: a heartbeat that renews every lease it
holds every lease/3, a maintenance pass, a watch on hard time limits (`Upkeep`), and the writer
of the progress that jobs report (`errands.worker.progress`).

One task group owns every loop, so none can die silently: a failure that passes (Redis
unreachable, OOM, READONLY during a failover...) is retried with capped backoff and logged once
(`Outage`); anything else stops the worker loudly: it gives its jobs back, logs why, and `run`
raises, so that ``errands worker`` exits non-zero for its process manager to restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from errands.broker.types import AckCode, Delivery, Fetched, Lease, Outcome
from errands.broker.urls import redact
from errands.errors import BrokerError, BrokerUnavailable, ErrandsError
from errands.observe.recorder import Recorder
from errands.result import error_of
from errands.worker.assign import Assigner
from errands.worker.at_exit import settle_at_exit
from errands.worker.banner import log_banner
from errands.worker.bell import Bell
from errands.worker.config import WorkerConfig
from errands.worker.follow_ups import apply_follow_ups
from errands.worker.ledger import Ledger
from errands.worker.outage import Backoff, Outage
from errands.worker.outcome_log import ReapedLog, log_as_worker
from errands.worker.pool import Assigned, Pool, PoolEvents
from errands.worker.progress import ProgressWriter
from errands.worker.protocol import Finished, Job, Wait
from errands.worker.upkeep import Upkeep

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["Supervisor", "WorkerConfig"]

log = logging.getLogger("errands.worker")

_CALL_TIMEOUT_S = 20.0  # the watchdog: no Redis call may hang longer than this
# Acks wait for the next fetch to ride along with, but never longer than this, nor in more
# than this number: a busy pool pays one round trip per batch, an idle one none at all.
_ACK_DELAY_S = 0.01
_ACK_BATCH = 256
_FIRST_TOKEN = "1"  # noqa: S105 - a lease token counts deliveries; "1" is the first one


#: How often `cancel_until_done` cancels again the loops still running.
_RECANCEL_EVERY_S = 1.0


def cancel_until_done(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel `tasks`, and again every second those that are still running.

    A single cancel can be lost: one that lands just as a call's own timeout expires can come
    out of the call as that timeout, which the loops' retries absorb as an outage; the loop
    would then go on for ever and the worker never exit after SIGTERM.
    """
    running = [task for task in tasks if not task.done()]
    for task in running:
        task.cancel()
    if running:
        asyncio.get_running_loop().call_later(_RECANCEL_EVERY_S, cancel_until_done, running)


class Supervisor:
    """Runs a worker until it is told to stop.

    Args:
        app: the app whose tasks run.
        config: the worker's settings.
        app_spec: ``module:app``, for child processes to import (process pool only).
    """

    def __init__(self, app: App, config: WorkerConfig, app_spec: str | None = None) -> None:
        self.app = app
        self.config = config
        self.broker = app.broker
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        log_as_worker(self.worker_id, config.log_jobs)  # before any child starts
        self.ledger = Ledger()
        self._assigner = Assigner(app)
        self._activity = Bell()
        self._stopping = False
        self._stop_deadline: float | None = None
        self._killed = False
        self._recheck_at: float | None = None  # monotonic: a delayed job falls due, or a lease ends
        self._drained = False  # the last fetch found the queues empty: wait for a wake token
        # The pending wait for a wake token; with one queue it fetches as it wakes.
        self._wake: asyncio.Future[bool | Fetched] | None = None
        self._wake_fetches = False  # the pending wait fetches as it wakes (one queue)
        self.outage = Outage(redact(getattr(self.broker, "url", repr(self.broker))))
        self._chords_due = asyncio.Event()  # an ack sent a job to the dead set
        self._reaped = ReapedLog(app)  # jobs Redis settled by our calls get their line here
        self.progress = ProgressWriter(self.broker, self.ledger)
        self.metrics = Recorder()  # counts only while metrics are served (serve_worker_metrics)
        events = PoolEvents(
            self._on_finished,
            self._on_give_back,
            self._on_took,
            self._on_wait_ended,
            self._on_died,
            self.progress.add,
        )
        self.pool: Pool
        if config.pool == "process":
            if app_spec is None:
                raise ValueError("the process pool needs the app's import path (module:app)")
            from errands.worker.pool_process import ProcessPool  # noqa: PLC0415

            self.pool = ProcessPool(
                app, app_spec, events, concurrency=config.concurrency, prefetch=config.prefetch
            )
        else:
            from errands.worker.pool_inprocess import InProcessPool  # noqa: PLC0415

            concurrency = 1 if config.pool == "solo" else config.concurrency
            self.pool = InProcessPool(app, events, concurrency=concurrency)
        self.upkeep = Upkeep(
            self.broker,
            config,
            self.worker_id,
            self.ledger,
            self.pool,
            self.outage,
            self._chords_due,
            self._on_died,
        )

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds."""
        return int(self.config.lease_s * 1000)

    def stopping(self) -> bool:
        """True once the worker was told to stop (or cannot go on)."""
        return self._stopping

    @property
    def processed(self) -> int:
        """Jobs settled in Redis so far."""
        return self.ledger.processed

    # Pool events ------------------------------------------------------------------------------

    def _on_finished(self, results: Sequence[Finished]) -> None:
        self.metrics.finished(results)
        self.ledger.finished(results)
        self._activity.set()

    def _on_took(
        self, queue: str, jobs: Sequence[Job], tokens: Sequence[str], more: bool
    ) -> list[Assigned]:
        """A child leased jobs itself: hold them (leases, limits), and fetch if more are ready.

        A single job on an idle worker costs no fetch of ours: its child found nothing behind it.
        """
        for job, token in zip(jobs, tokens, strict=True):
            self.ledger.hold(queue, job.id, token, taken=True)
        if more:
            self._drained = False  # a burst: fetch it in batches for every child
        self._activity.set()
        assigned = [self._assigner.assign(job) for job in jobs]
        self.metrics.started(queue, assigned)
        return assigned

    def _on_wait_ended(self) -> None:
        self._activity.set()  # the next idle turn waits on Redis for that child

    def _on_give_back(self, job_ids: Sequence[str]) -> None:
        self.metrics.gave_back(job_ids)
        self.ledger.give_back(job_ids)
        self._activity.set()

    # Signals ----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: stop fetching and let running jobs finish. Second call: stop now."""
        if not self._stopping:
            log.info(
                "worker %s stopping: running jobs may finish within %gs (signal again to stop now)",
                self.worker_id,
                self.config.grace_period_s,
            )
            self._stopping = True
            self._stop_deadline = time.monotonic() + self.config.grace_period_s
            self.pool.stop()
        else:
            log.warning("worker %s stopping now: giving back every job", self.worker_id)
            self._stop_deadline = time.monotonic()
        self._activity.set()

    # Main --------------------------------------------------------------------------------------

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        """Serve the queues until stopped; returns when every job is acked or given back.

        Raises:
            Exception: what stopped the worker: an error that does not pass (a `BrokerError`
                that is not `BrokerUnavailable`, a child that cannot import the app) or a bug.
                It is logged first (with its traceback unless it is an `ErrandsError`), and
                every job the worker held has been given back.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            if await self.upkeep.wait_for_redis(self.stopping, self._activity):
                await self.pool.start()
                log_banner(self)
                if ready is not None:
                    ready()
                self.app.middleware.on_worker_start(self.upkeep.worker_info())
                try:
                    await self._serve()
                finally:
                    self.app.middleware.on_worker_stop(self.upkeep.worker_info())
        except Exception as error:
            if isinstance(error, ErrandsError):
                log.error("worker %s stopped: %s", self.worker_id, error)
            else:
                log.exception("worker %s stopped by an unexpected error", self.worker_id)
            raise
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    async def _serve(self) -> None:
        """Run every loop in one task group; on a failure, give every job back, then raise."""
        upkeep = self.upkeep
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                background = [
                    group.create_task(upkeep.heartbeat_loop(), name="errands-heartbeat"),
                    group.create_task(upkeep.maintenance_loop(), name="errands-maintenance"),
                    group.create_task(upkeep.chord_failures_loop(), name="errands-chords"),
                    group.create_task(self._limits_loop(), name="errands-limits"),
                    group.create_task(self.progress.loop(), name="errands-progress"),
                ]
                exchange = group.create_task(self._exchange_loop(), name="errands-exchange")
                exchange.add_done_callback(lambda _: cancel_until_done(background))
        except BaseExceptionGroup as group_error:
            failure = group_error.exceptions[0]
        if failure is not None:
            log.error(
                "worker %s cannot go on (%s): giving back every job",
                self.worker_id,
                failure,
            )
            self._stopping = True
            await self.pool.kill()
        await self.pool.close()
        if await self._flush_final():
            await upkeep.leave()  # Redis did not answer: the record goes when its lease passes
        if failure is not None:
            raise failure

    # The exchange loop -------------------------------------------------------------------------

    def _done(self) -> bool:
        return self._stopping and self.ledger.settled() and self._wake is None

    async def _exchange_loop(self) -> None:
        backoff = Backoff()
        try:
            while not self._done():
                await self._shutdown_step()
                self._activity.clear()
                try:
                    async with asyncio.timeout(_CALL_TIMEOUT_S):
                        moved = await self._exchange()
                except (BrokerUnavailable, TimeoutError) as error:
                    if self._killed and self.ledger.settled():
                        return
                    self.outage.failed("exchange with Redis", error)
                    await asyncio.wait({self._activity.waiter()}, timeout=backoff.pause())
                    continue
                backoff.reset()
                self.outage.recovered()
                if self._woken() or moved or self._activity.is_set():
                    continue
                await self._idle()
                if self._recheck_at is not None and time.monotonic() >= self._recheck_at:
                    self._drained = False  # a delayed job is due or a lease ended: fetch
                self._woken()
        finally:
            self._stopping = True  # what the wait still brings is given back, never run
            await self._end_wait()

    async def _end_wait(self) -> None:
        """End the pending wait for work without losing what it may fetch.

        A fetch pipelined behind the wait runs in Redis the moment the wait ends, whatever
        happens to us: cancelling our side could leave jobs leased to nobody until their lease
        expires. So a wake token of our own ends the wait, and what it fetched is given back.
        """
        wake = self._wake
        if wake is None:
            return
        if self._wake_fetches and not wake.done():
            try:
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    await self.broker.interrupt_wait(self.config.queues.names[0])
                    await asyncio.wait({wake})
            except (BrokerUnavailable, TimeoutError) as error:
                log.warning("could not end the wait for work (%s)", error)
        if not wake.done():
            wake.cancel()
            with contextlib.suppress(BaseException):
                await wake
        self._woken()

    def _woken(self) -> bool:
        """True (once) when the wait for a wake token ended: work may have come, so fetch."""
        wake = self._wake
        if wake is None or not wake.done():
            return False
        self._wake = None
        self._drained = False
        if wake.cancelled():
            return True
        error = wake.exception()
        if isinstance(error, BrokerUnavailable | TimeoutError):
            self.outage.failed("waiting for work", error)
            return True
        if error is not None:
            raise error  # not passing: the task group stops the worker
        fetched = wake.result()
        if isinstance(fetched, Fetched):
            queue = self.config.queues.names[0]
            if self._stopping:  # leased while we were stopping: give them straight back
                leases = [Lease(d.id, d.token) for d in fetched.jobs]
                self.ledger.restore_releases(queue, leases)
            else:
                self._take_fetched(queue, fetched)
        return True

    async def _idle(self) -> None:
        """Sleep until a job finishes, a wake token comes, acks are due or a recheck is."""
        waits: set[asyncio.Future[Any]] = {self._activity.waiter()}
        wanted = not self._stopping and (self._drained or self.pool.hungry())
        if wanted and self._wake is None and not (self._drained and self._children_wait()):
            self._start_wait()
        if self._wake is not None:
            waits.add(self._wake)
        await asyncio.wait(waits, timeout=self._idle_timeout(), return_when=asyncio.FIRST_COMPLETED)

    def _start_wait(self) -> None:
        """Wait for a wake token; with one queue, the fetch rides behind it in Redis."""
        free = self.pool.free_slots()
        names = self.config.queues.names
        waiting: Awaitable[bool | Fetched]
        self._wake_fetches = len(names) == 1 and free > 0
        if self._wake_fetches:
            waiting = self.broker.wait_and_fetch(
                names[0], 5.0, free, self.lease_ms, self.worker_id, limited=self.pool.idle_slots()
            )
        else:
            waiting = self.broker.wait_for_work(names, 5.0)
        self._wake = asyncio.ensure_future(waiting)

    def _children_wait(self) -> bool:
        """Idle children wait on the broker themselves, when they can: True if one does.

        A job then reaches the process that runs it in one hop, and its result leaves from
        there too (`errands.broker.transport.DirectWaits`, on Redis `broker/redis/direct_line`).
        One queue, and a pool whose executors can (the process pool); a child whose broker
        offers no line answers `WaitEnded` and the supervisor waits as before.
        """
        names = self.config.queues.names
        if len(names) != 1:
            return False
        return self.pool.wait_for_work(Wait(names[0], self.lease_ms, self.worker_id))

    async def _shutdown_step(self) -> None:
        if self._stopping and self._wake is not None:
            await self._end_wait()
        if not self._stopping or self._stop_deadline is None or self._killed:
            return
        if time.monotonic() >= self._stop_deadline or self.pool.idle():
            if not self.pool.idle():
                log.warning("grace period over: killing children, giving back their jobs")
            self._killed = True
            await self.pool.kill()

    def _acks_due(self) -> bool:
        """Send acks now, or let them wait a little for the next fetch to ride along with?

        They wait only while the pool is busy and a fetch is coming; an idle worker (its queues
        drained) acks at once, so a waiting producer hears back without delay.
        """
        since = self.ledger.acks_since
        if since is None:
            return False
        return (
            self._stopping
            or self._drained
            or self.ledger.pending_acks >= _ACK_BATCH
            or time.monotonic() - since >= _ACK_DELAY_S
        )

    def _idle_timeout(self) -> float:
        """How long the loop may sleep: until acks are due, or a recheck, at most 0.5 s."""
        now = time.monotonic()
        timeout = 0.5
        if self.ledger.acks_since is not None:
            timeout = min(timeout, self.ledger.acks_since + _ACK_DELAY_S - now)
        if self._recheck_at is not None and self._drained:
            timeout = min(timeout, self._recheck_at - now)
        return max(0.0, timeout)

    async def _exchange(self) -> int:
        """Ack what finished and fetch what fits, queue by queue; returns jobs moved.

        Fetches only when the pool runs low, and acks ride along with those fetches unless they
        have waited `_ACK_DELAY_S`: so a busy worker moves jobs in batches.
        """
        fetching = not self._stopping and not self._drained and self.pool.hungry()
        free = self.pool.free_slots() if fetching else 0
        wanted = free
        acks_due = self._acks_due()
        if free <= 0 and not acks_due and not self.ledger.releases:
            return 0
        if wanted > 0:
            self._recheck_at = None
        # Take the acks before awaiting the follow-ups: a job that finishes meanwhile has its
        # follow-ups queued for next time, so its ack must wait for next time too.
        taken: dict[str, list[Outcome]] = {}
        if free > 0 or acks_due:
            taken = self.ledger.take_acks()
            try:
                await self._send_follow_ups()
            except BaseException:
                self.ledger.restore_acks(taken)
                raise
        moved = 0
        for queue in self.config.queues.order():
            acks = taken.pop(queue, [])
            releases = self.ledger.take_releases(queue)
            try:
                got = await self._exchange_queue(queue, free, acks, releases)
            except BaseException:
                # Nothing is lost: send them again next time (a stale ack is refused, harmless).
                taken[queue] = acks
                self.ledger.restore_acks(taken)
                self.ledger.restore_releases(queue, releases)
                raise
            free -= got
            moved += got + len(acks) + len(releases)
        self.ledger.restore_acks(taken)  # a queue no longer served: keep them, never drop
        if wanted > 0 and free > 0:
            self._drained = True  # every queue gave less than we had room for
        return moved

    async def _send_follow_ups(self) -> None:
        """Enqueue chain steps before acking the jobs that made them.

        A crash in between re-runs the parent, whose follow-up has a derived id and key: it is
        not enqueued twice.
        """
        follow_ups = self.ledger.take_follow_ups()
        if not follow_ups:
            return
        try:
            await apply_follow_ups(self.app, follow_ups)
        except BaseException:
            self.ledger.restore_follow_ups(follow_ups)  # all again: each one is idempotent
            raise

    async def _exchange_queue(
        self, queue: str, free: int, acks: list[Outcome], releases: list[Lease]
    ) -> int:
        """One queue's share of an exchange; returns how many jobs it fetched."""
        if releases:
            await self.broker.release(queue, releases)
            releases.clear()  # sent: not to be restored if what follows fails
        # A long outage can leave more acks than one call takes: all but the last batch go
        # on their own, the last rides with the fetch.
        while len(acks) > _ACK_BATCH:
            batch = acks[:_ACK_BATCH]
            self._acked(queue, batch, await self.broker.ack(queue, batch))
            del acks[:_ACK_BATCH]
        if free <= 0:
            if acks:
                self._acked(queue, acks, await self.broker.ack(queue, acks))
                acks.clear()
            return 0
        if acks:
            codes, fetched = await self.broker.ack_and_fetch(
                queue, acks, free, self.lease_ms, self.worker_id, limited=self.pool.idle_slots()
            )
            self._take_fetched(queue, fetched)  # ours now, whatever became of the acks
            if isinstance(codes, BrokerError):
                raise codes  # the acks go again next time
            self._acked(queue, acks, codes)
            acks.clear()
        else:
            fetched = await self.broker.fetch(
                queue, free, self.lease_ms, self.worker_id, limited=self.pool.idle_slots()
            )
            self._take_fetched(queue, fetched)
        return len(fetched.jobs)

    def _on_died(self, queue: str, died: Sequence[tuple[str, bytes]]) -> None:
        """Jobs went to the dead set by a call of this worker's: tell the middleware."""
        self._chords_due.set()  # a chord member may be one of them: fail its chord soon
        self.metrics.died(queue, died)
        self._reaped.note(queue, died)
        if self.app.middleware:
            for job_id, outcome in died:
                self.app.middleware.on_dead(queue, job_id, error_of(outcome))

    def _take_fetched(self, queue: str, fetched: Fetched) -> None:
        """Dispatch fetched jobs, and note when to look again."""
        if fetched.died:
            self._on_died(queue, fetched.died)
        for ms in (fetched.next_due_ms, fetched.next_expiry_ms):
            if ms is not None:  # a delayed job falls due, or a lease (maybe a dead worker's) ends
                self._recheck_in(ms)
        self._dispatch(queue, fetched.jobs)

    def _recheck_in(self, ms: int) -> None:
        """Fetch again in `ms` even if no wake token comes (a due job, an expired lease)."""
        at = time.monotonic() + ms / 1000 + 0.001
        self._recheck_at = at if self._recheck_at is None else min(self._recheck_at, at)

    def _acked(self, queue: str, acks: Sequence[Outcome], codes: Sequence[AckCode]) -> None:
        self.ledger.processed += len(acks)
        for outcome, code in zip(acks, codes, strict=True):
            if code is AckCode.RETRYING:
                self._recheck_in(outcome.retry_delay_ms)
            elif code is AckCode.DEAD:
                self._on_died(queue, [(outcome.id, outcome.outcome)])
            elif code is AckCode.STALE:
                self.ledger.refused(outcome)
                log.warning(
                    "job %s finished after its lease was lost and it was leased again: if "
                    "another worker took it, it runs twice (leases: %gs; tasks must be "
                    "idempotent)",
                    outcome.id,
                    self.config.lease_s,
                )
        self.metrics.acked(acks, codes)

    def _dispatch(self, queue: str, deliveries: Sequence[Delivery]) -> None:
        assigned: list[Assigned] = []
        for delivery in deliveries:
            # A job delivered before may have come back to the worker that still runs it.
            redelivered = delivery.token != _FIRST_TOKEN
            if redelivered and self.ledger.reclaim(queue, delivery.id, delivery.token):
                log.info(
                    "job %s came back to this worker, which ran it already: its outcome "
                    "settles the new lease, it does not run again",
                    delivery.id,
                )
                continue
            self.ledger.hold(queue, delivery.id, delivery.token)
            assigned.append(
                self._assigner.assign(Job(delivery.id, delivery.payload, delivery.attempt))
            )
        if assigned:
            self.metrics.started(queue, assigned)
            self.pool.submit(assigned)

    async def _flush_final(self) -> bool:
        """Ack and release what is left, so a restarted worker finds every job where it belongs.

        Returns whether everything was settled (False: Redis did not answer, or refused).
        """
        self._stopping = True
        self.ledger.release_everything()
        return await settle_at_exit(self.ledger, self._exchange, self.outage, _CALL_TIMEOUT_S)

    async def _limits_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.limits_every_s)
            await self.pool.enforce_limits()
