"""The supervisor: all Redis I/O of a worker, on one asyncio loop; user code runs in its pool.

One loop exchanges with Redis: it acknowledges finished jobs and fetches as many new ones as the
pool has room for, in one round trip per queue (ack pipelined with fetch); when there is nothing
to do it blocks on the queues' wake tokens. Beside it: a heartbeat that renews every lease it
holds every lease/3, a maintenance pass, and a watch on hard time limits.
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from errands.broker.types import AckCode, Delivery, Fetched, Lease, Outcome
from errands.errors import BrokerUnavailable
from errands.message import decode_envelope
from errands.worker.bell import Bell
from errands.worker.config import WorkerConfig
from errands.worker.follow_ups import apply_follow_ups
from errands.worker.pool import Assigned, Pool, PoolEvents
from errands.worker.protocol import Finished, FollowUp, Job, Wait

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["Supervisor", "WorkerConfig"]

log = logging.getLogger("errands.worker")

_CALL_TIMEOUT_S = 20.0  # the watchdog: no Redis call may hang longer than this
# Acks wait for the next fetch to ride along with, but never longer than this, nor in more
# than this number: a busy pool pays one round trip per batch, an idle one none at all.
_ACK_DELAY_S = 0.01
_ACK_BATCH = 256


@dataclass(slots=True)
class _Held:
    queue: str
    token: str
    taken: bool = False  # leased by a child itself, which may settle it itself


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
        self._held: dict[str, _Held] = {}
        self._acks: dict[str, list[Outcome]] = {}
        self._releases: dict[str, list[Lease]] = {}
        self._follow_ups: list[FollowUp] = []  # applied before any ack goes out
        self._task_facts: dict[str, tuple[float, bool]] = {}  # name -> (hard limit, is async)
        self._activity = Bell()
        self._stopping = False
        self._stop_deadline: float | None = None
        self._killed = False
        self._recheck_at: float | None = None  # monotonic: a delayed job falls due, or a lease ends
        self._drained = False  # the last fetch found the queues empty: wait for a wake token
        # The pending wait for a wake token; with one queue it fetches as it wakes.
        self._wake: asyncio.Future[bool | Fetched] | None = None
        self._wake_fetches = False  # the pending wait fetches as it wakes (one queue)
        self._acks_since: float | None = None
        self._pending_acks = 0
        self.processed = 0
        events = PoolEvents(
            self._on_finished, self._on_give_back, self._on_took, self._on_wait_ended
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

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds."""
        return int(self.config.lease_s * 1000)

    # Pool events ------------------------------------------------------------------------------

    def _on_finished(self, results: Sequence[Finished]) -> None:
        for result in results:
            held = self._held.pop(result.id, None)
            if held is None:
                continue  # its lease was lost or it was given back: another worker owns it
            if result.acked:  # a job the child took and settled itself
                self.processed += 1
                continue
            self._follow_ups.extend(result.follow_ups)
            self._acks.setdefault(held.queue, []).append(
                Outcome(result.id, held.token, result.kind, result.outcome, result.retry_delay_ms)
            )
            self._pending_acks += 1
            if self._acks_since is None:
                self._acks_since = time.monotonic()
        self._activity.set()

    def _on_took(
        self, queue: str, jobs: Sequence[Job], tokens: Sequence[str], more: bool
    ) -> list[Assigned]:
        """A child leased jobs itself: hold them (leases, limits), and fetch if more are ready.

        A single job on an idle worker costs no fetch of ours: its child found nothing behind it.
        """
        for job, token in zip(jobs, tokens, strict=True):
            self._held[job.id] = _Held(queue, token, taken=True)
        if more:
            self._drained = False  # a burst: fetch it in batches for every child
        self._activity.set()
        return [self._assign(job) for job in jobs]

    def _on_wait_ended(self) -> None:
        self._activity.set()  # the next idle turn waits on Redis for that child

    def _on_give_back(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            held = self._held.pop(job_id, None)
            if held is not None:
                self._releases.setdefault(held.queue, []).append(Lease(job_id, held.token))
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
        """Serve the queues until stopped; returns when every job is acked or given back."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        await self._with_retries(self._first_contact, "connect")
        await self.pool.start()
        log.info(
            "worker %s serving %s with %s pool of %d",
            self.worker_id,
            ",".join(self.config.queues.names),
            self.config.pool,
            1 if self.config.pool == "solo" else self.config.concurrency,
        )
        if ready is not None:
            ready()
        background = [
            asyncio.create_task(self._heartbeat_loop(), name="errands-heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="errands-maintenance"),
            asyncio.create_task(self._limits_loop(), name="errands-limits"),
        ]
        try:
            await self._exchange_loop()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.pool.close()
            await self._flush_final()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    async def _first_contact(self) -> None:
        for queue in self.config.queues.names:
            await self.broker.heartbeat(queue, self.worker_id, self._info(), [], self.lease_ms)

    def _info(self) -> bytes:
        return msgspec.json.encode(
            {
                "seen": int(time.time() * 1000),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": list(self.config.queues.names),
                "pool": self.config.pool,
                "concurrency": self.config.concurrency,
                "held": len(self._held),
                "processed": self.processed,
            }
        )

    async def _with_retries(self, call: Callable[[], Awaitable[None]], what: str) -> None:
        """Run a Redis step; while Redis is unreachable, log and retry with backoff."""
        delay = 0.1
        while True:
            try:
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    await call()
                return
            except (BrokerUnavailable, TimeoutError) as error:
                if self._killed:
                    return
                log.warning("%s failed (%s); retrying in %.1fs", what, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # The exchange loop -------------------------------------------------------------------------

    def _done(self) -> bool:
        return (
            self._stopping
            and not self._held
            and not self._acks
            and not self._releases
            and not self._follow_ups
            and self._wake is None
        )

    async def _exchange_loop(self) -> None:
        try:
            while not self._done():
                await self._shutdown_step()
                self._activity.clear()
                try:
                    async with asyncio.timeout(_CALL_TIMEOUT_S):
                        moved = await self._exchange()
                except (BrokerUnavailable, TimeoutError) as error:
                    log.warning("Redis exchange failed (%s); retrying", error)
                    await asyncio.sleep(0.5)
                    continue
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
        if wake.exception() is not None:
            log.warning("waiting for work failed: %s", wake.exception())
            return True
        fetched = wake.result()
        if isinstance(fetched, Fetched):
            queue = self.config.queues.names[0]
            if self._stopping:  # leased while we were stopping: give them straight back
                leases = [Lease(d.id, d.token) for d in fetched.jobs]
                self._releases.setdefault(queue, []).extend(leases)
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
            waiting = self.broker.wait_and_fetch(names[0], 5.0, free, self.lease_ms, self.worker_id)
        else:
            waiting = self.broker.wait_for_work(names, 5.0)
        self._wake = asyncio.ensure_future(waiting)

    def _children_wait(self) -> bool:
        """Idle children wait on Redis themselves, when they can: True if one does.

        A job then reaches the process that runs it in one hop, and its result leaves from
        there too (see `errands.worker.direct_wait`). One queue, and a pool whose executors
        can (the process pool); a child whose broker is not Redis answers `WaitEnded` and the
        supervisor waits as before.
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
        if self._acks_since is None:
            return False
        return (
            self._stopping
            or self._drained
            or self._pending_acks >= _ACK_BATCH
            or time.monotonic() - self._acks_since >= _ACK_DELAY_S
        )

    def _idle_timeout(self) -> float:
        """How long the loop may sleep: until acks are due, or a recheck, at most 0.5 s."""
        now = time.monotonic()
        timeout = 0.5
        if self._acks_since is not None:
            timeout = min(timeout, self._acks_since + _ACK_DELAY_S - now)
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
        if free <= 0 and not acks_due and not self._releases:
            return 0
        if free > 0 or acks_due:
            self._acks_since = None
            self._pending_acks = 0
        if wanted > 0:
            self._recheck_at = None
        # Take the acks before awaiting the follow-ups: a job that finishes meanwhile has its
        # follow-ups queued for next time, so its ack must wait for next time too.
        taken: dict[str, list[Outcome]] = {}
        if free > 0 or acks_due:
            taken, self._acks = self._acks, {}
            try:
                await self._send_follow_ups()
            except BaseException:
                self._restore_acks(taken)
                raise
        moved = 0
        for queue in self.config.queues.order():
            acks = taken.pop(queue, [])
            releases = self._releases.pop(queue, [])
            try:
                got = await self._exchange_queue(queue, free, acks, releases)
            except BaseException:
                # Nothing is lost: send them again next time (a stale ack is refused, harmless).
                taken[queue] = acks
                self._restore_acks(taken)
                if releases:
                    self._releases.setdefault(queue, []).extend(releases)
                raise
            free -= got
            moved += got + len(acks) + len(releases)
        self._restore_acks(taken)  # a queue this worker no longer serves: keep them, never drop
        if wanted > 0 and free > 0:
            self._drained = True  # every queue gave less than we had room for
        return moved

    def _restore_acks(self, taken: dict[str, list[Outcome]]) -> None:
        """Put back acks that could not be sent, ahead of any that came in since."""
        for queue, acks in taken.items():
            if acks:
                self._acks[queue] = acks + self._acks.get(queue, [])
                self._pending_acks += len(acks)
                self._acks_since = self._acks_since or time.monotonic()

    async def _send_follow_ups(self) -> None:
        """Enqueue chain steps before acking the jobs that made them.

        A crash in between re-runs the parent, whose follow-up has a derived id: it is not
        enqueued twice.
        """
        follow_ups, self._follow_ups = self._follow_ups, []
        if not follow_ups:
            return
        try:
            await apply_follow_ups(self.broker, follow_ups)
        except BaseException:
            self._follow_ups[:0] = follow_ups  # all again: each one is idempotent
            raise

    async def _exchange_queue(
        self, queue: str, free: int, acks: list[Outcome], releases: list[Lease]
    ) -> int:
        """One queue's share of an exchange; returns how many jobs it fetched."""
        if releases:
            await self.broker.release(queue, releases)
        if free <= 0:
            if acks:
                self._acked(acks, await self.broker.ack(queue, acks))
            return 0
        if acks:
            codes, fetched = await self.broker.ack_and_fetch(
                queue, acks, free, self.lease_ms, self.worker_id
            )
            self._acked(acks, codes)
        else:
            fetched = await self.broker.fetch(queue, free, self.lease_ms, self.worker_id)
        self._take_fetched(queue, fetched)
        return len(fetched.jobs)

    def _take_fetched(self, queue: str, fetched: Fetched) -> None:
        """Dispatch fetched jobs, and note when to look again."""
        for ms in (fetched.next_due_ms, fetched.next_expiry_ms):
            if ms is not None:  # a delayed job falls due, or a lease (maybe a dead worker's) ends
                self._recheck_in(ms)
        self._dispatch(queue, fetched.jobs)

    def _recheck_in(self, ms: int) -> None:
        """Fetch again in `ms` even if no wake token comes (a due job, an expired lease)."""
        at = time.monotonic() + ms / 1000 + 0.001
        self._recheck_at = at if self._recheck_at is None else min(self._recheck_at, at)

    def _acked(self, acks: Sequence[Outcome], codes: Sequence[AckCode]) -> None:
        self.processed += len(acks)
        for outcome, code in zip(acks, codes, strict=True):
            if code is AckCode.RETRYING:
                self._recheck_in(outcome.retry_delay_ms)
            elif code is AckCode.STALE:
                log.warning(
                    "job %s finished after its lease was lost: another worker may have run it "
                    "too (leases: %gs; tasks must be idempotent)",
                    outcome.id,
                    self.config.lease_s,
                )

    def _dispatch(self, queue: str, deliveries: Sequence[Delivery]) -> None:
        assigned: list[Assigned] = []
        for delivery in deliveries:
            self._held[delivery.id] = _Held(queue, delivery.token)
            assigned.append(self._assign(Job(delivery.id, delivery.payload, delivery.attempt)))
        if assigned:
            self.pool.submit(assigned)

    def _assign(self, job: Job) -> Assigned:
        try:
            envelope = decode_envelope(job.payload)
        except msgspec.DecodeError:
            return Assigned(job, "", self.app.time_limit, is_async=False)
        known = self._task_facts.get(envelope.task)
        if known is None:
            task = self.app.tasks.get(envelope.task)
            known = self._task_facts[envelope.task] = (
                task.options.time_limit if task else self.app.time_limit,
                task is not None and asyncio.iscoroutinefunction(task.fn),
            )
        return Assigned(job, envelope.task, envelope.time_limit or known[0], known[1])

    async def _flush_final(self) -> None:
        """Ack and release what is left, so a restarted worker finds every job where it belongs."""
        for _ in range(3):
            if not self._acks and not self._releases and not self._held:
                return
            for job_id, held in list(self._held.items()):
                self._releases.setdefault(held.queue, []).append(Lease(job_id, held.token))
            self._held.clear()
            self._stopping = True
            try:
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    await self._exchange()
            except (BrokerUnavailable, TimeoutError) as error:
                log.warning("could not settle jobs at exit (%s); their leases will expire", error)
                await asyncio.sleep(0.5)

    # Background loops --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        period = self.config.lease_s / 3
        while True:
            await asyncio.sleep(period)
            await self._with_retries(self._heartbeat, "heartbeat")

    async def _heartbeat(self) -> None:
        leases: dict[str, list[Lease]] = {q: [] for q in self.config.queues.names}
        for job_id, held in self._held.items():
            leases.setdefault(held.queue, []).append(Lease(job_id, held.token))
        for queue, outcomes in self._acks.items():
            leases.setdefault(queue, []).extend(Lease(o.id, o.token) for o in outcomes)
        info = self._info()
        for queue, queue_leases in leases.items():
            reply = await self.broker.heartbeat(
                queue, self.worker_id, info, queue_leases, self.lease_ms
            )
            for job_id in reply.lost:
                holding = self._held.get(job_id)
                if holding is not None and holding.taken:
                    # Most likely its child acked it a moment ago; if not, our ack of its
                    # outcome is refused as stale, and that warns.
                    continue
                if self._held.pop(job_id, None) is not None:
                    log.warning(
                        "lost the lease of job %s (Redis unreachable for longer than the lease?): "
                        "it may run again elsewhere",
                        job_id,
                    )
            if reply.cancelled:
                self.pool.cancel(reply.cancelled)

    async def _maintenance_loop(self) -> None:
        while True:
            await self._with_retries(self._maintain, "maintenance")
            await asyncio.sleep(self.config.maintenance_every_s)

    async def _maintain(self) -> None:
        # The lock spans the interval: one pass per queue per interval, however many workers.
        lock_ms = int(self.config.maintenance_every_s * 1000)
        for queue in self.config.queues.names:
            report = await self.broker.maintain(queue, self.worker_id, lock_ms)
            if report is not None and (report.reaped or report.dead_trimmed):
                log.info("maintenance of %s: %s", queue, report)

    async def _limits_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.limits_every_s)
            await self.pool.enforce_limits()
