"""The supervisor's loops beside the exchange: heartbeats, maintenance, failing chords.

The heartbeat renews every lease the worker holds, every lease/3, in one call per queue. It also
tells Redis which of those jobs have started running: a lease that expires on a job that never
started is not held against the job (its worker died, not because of it; see reap_expired in
00_shared.lua). Maintenance runs the bounded housekeeping of each queue, again at once while a
pass finds more to do than one call may handle. And the chords of members that ended dead are
failed, soon after an ack sent a job to the dead set, and at every maintenance interval for the
members that died another way (stalled, or acked by a child itself). Each pass also samples
the counters of each queue for its throughput series, once a minute (`errands.broker.series`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence

import msgspec

from errands.broker.base import Broker
from errands.errors import BrokerError, BrokerUnavailable
from errands.middleware import WorkerInfo
from errands.worker.bell import Bell
from errands.worker.config import WorkerConfig
from errands.worker.ledger import Ledger
from errands.worker.outage import Backoff, Outage, keep_trying
from errands.worker.pool import Pool

__all__ = ["Upkeep"]

log = logging.getLogger("errands.worker")

_CALL_TIMEOUT_S = 20.0  # the watchdog: no Redis call may hang longer than this
# While maintenance finds more than one call may handle, it runs again after this pause, at
# most this many times per pass: expired results are deleted as fast as they come, and Redis,
# which runs one call at a time, still serves everyone else between two calls.
_SATURATED_PAUSE_S = 0.01
_SATURATED_PASSES = 100
_LEAVE_TIMEOUT_S = 5.0  # a worker that stops does not wait longer to say so


class Upkeep:
    """Heartbeats and maintenance of one worker.

    Args:
        broker: the broker.
        config: the worker's settings.
        worker_id: the worker's id (leases and the maintenance lock are in its name).
        ledger: what the worker holds.
        pool: the pool running the jobs (which have started; cancel requests go to it).
        outage: the worker's view of Redis failures, shared with its other loops.
        chords_due: set when an ack sent a job to the dead set: chords may have to fail.
        died: told of the jobs a maintenance pass sent to the dead set (queue, id, outcome).
    """

    def __init__(
        self,
        broker: Broker,
        config: WorkerConfig,
        worker_id: str,
        ledger: Ledger,
        pool: Pool,
        outage: Outage,
        chords_due: asyncio.Event,
        died: Callable[[str, Sequence[tuple[str, bytes]]], None],
    ) -> None:
        self.broker = broker
        self.config = config
        self.worker_id = worker_id
        self.ledger = ledger
        self.pool = pool
        self.outage = outage
        self.chords_due = chords_due
        self.died = died
        self.started_ms = int(time.time() * 1000)
        self.renewals = 0  # leases renewed so far (a metric)
        self._sample_due: dict[str, float] = {}  # queue -> when to sample it next (monotonic)

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds."""
        return int(self.config.lease_s * 1000)

    def worker_info(self) -> WorkerInfo:
        """The worker, as the middleware's `on_worker_start` and `on_worker_stop` see it."""
        concurrency = 1 if self.config.pool == "solo" else self.config.concurrency
        queues = list(self.config.queues.names)
        return WorkerInfo(self.worker_id, queues, self.config.pool, concurrency)

    async def wait_for_redis(self, stopping: Callable[[], bool], woken: Bell) -> bool:
        """Make first contact (and load the library), retrying until Redis answers.

        Returns False when `stopping()` turned true before Redis answered (a ring of `woken`
        cuts the pause short).
        """
        backoff = Backoff()
        while not stopping():
            try:
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    await self.first_contact()
            except (BrokerUnavailable, TimeoutError) as error:
                self.outage.failed(
                    "first contact",
                    error,
                    first=f"worker {self.worker_id} waits for Redis: {{reason}}; it tries "
                    "again every few seconds until Redis answers",
                )
                await asyncio.wait({woken.waiter()}, timeout=backoff.pause())
            else:
                self.outage.recovered()
                return True
        return False

    def info(self) -> bytes:
        """The worker's record in its queues' worker lists (``seen`` is set by Redis)."""
        return msgspec.json.encode(
            {
                "seen": int(time.time() * 1000),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": list(self.config.queues.names),
                "pool": self.config.pool,
                "concurrency": self.config.concurrency,
                "held": len(self.ledger.held),
                "processed": self.ledger.processed,
                "started": self.started_ms,
                # Readers list the worker while it beats within this (it beats every lease/3).
                "lease": self.lease_ms,
            }
        )

    async def first_contact(self) -> None:
        """Record the worker in each queue (loading the library, where it is missing)."""
        for queue in self.config.queues.names:
            await self.broker.heartbeat(queue, self.worker_id, self.info(), [], self.lease_ms)

    async def leave(self) -> None:
        """Take the worker off its queues' worker lists: it stopped, and says so at once.

        A Redis that does not answer only delays it: the record goes once its lease passes.
        """
        for queue in self.config.queues.names:
            try:
                async with asyncio.timeout(_LEAVE_TIMEOUT_S):
                    await self.broker.leave(queue, self.worker_id)
            except (BrokerError, TimeoutError) as error:
                log.warning(
                    "worker %s could not leave the worker list of %s (%s): it leaves it "
                    "when its lease of %gs passes",
                    self.worker_id,
                    queue,
                    error,
                    self.config.lease_s,
                )
                return

    async def heartbeat_loop(self) -> None:
        """Renew the leases every lease/3, until cancelled; the first beat at once.

        At once: starting the pool may take longer than a lease after the first contact, and
        the worker must not look dead to operators meanwhile.
        """
        period = self.config.lease_s / 3
        while True:
            await keep_trying(self.heartbeat, "heartbeat", self.outage, _CALL_TIMEOUT_S)
            await asyncio.sleep(period)

    async def heartbeat(self) -> None:
        """Renew every lease held, queue by queue; stop tracking the lost ones."""
        by_queue = self.ledger.leases(self.config.queues.names)
        started = set(self.pool.started())
        # Finished jobs whose acks are owed ran, so they count as started.
        started.update(o.id for acks in self.ledger.acks.values() for o in acks)
        info = self.info()
        for queue, leases in by_queue.items():
            reply = await self.broker.heartbeat(
                queue, self.worker_id, info, leases, self.lease_ms, started
            )
            self.renewals += len(leases) - len(reply.lost)
            if reply.lost:
                self.ledger.lose(leases, reply.lost)
            if reply.cancelled:
                self.pool.cancel(reply.cancelled)

    async def maintenance_loop(self) -> None:
        """Run maintenance every `maintenance_every_s`, until cancelled."""
        while True:
            await keep_trying(self.maintain, "maintenance", self.outage, _CALL_TIMEOUT_S)
            await keep_trying(self.sample, "throughput sample", self.outage, _CALL_TIMEOUT_S)
            await asyncio.sleep(self.config.maintenance_every_s)

    async def maintain(self) -> None:
        """One pass on every queue; a queue with more to do than a call handles goes again."""
        # The lock spans the interval: one pass per queue per interval, however many workers.
        lock_ms = int(self.config.maintenance_every_s * 1000)
        for queue in self.config.queues.names:
            for _ in range(_SATURATED_PASSES):
                report = await self.broker.maintain(queue, self.worker_id, lock_ms)
                if report is None:
                    break  # another worker holds the lock for this interval
                if report.died:
                    self.died(queue, report.died)
                if report.reaped or report.dead_trimmed:
                    log.info("maintenance of %s: %s", queue, report)
                if not report.saturated:
                    break
                await asyncio.sleep(_SATURATED_PAUSE_S)

    async def sample(self) -> None:
        """Sample each queue's counters once a minute, within a maintenance pass of its start.

        One call per queue per minute: the reply says when the next minute starts. A sample
        Redis refuses is logged and tried a minute later; the series is derived data, not a
        reason to stop a worker.
        """
        now = time.monotonic()
        for queue in self.config.queues.names:
            if self._sample_due.get(queue, 0.0) > now:
                continue
            try:
                sampled = await self.broker.asample_throughput(queue)
            except BrokerUnavailable:
                raise
            except BrokerError as error:
                log.warning(
                    "throughput sample of %s refused (%s): tried again in a minute", queue, error
                )
                self._sample_due[queue] = now + 60
            else:
                self._sample_due[queue] = now + sampled.next_in_s

    async def chord_failures_loop(self) -> None:
        """Fail the chords of dead members: when an ack killed a job, else every interval."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.maintenance_every_s):
                    await self.chords_due.wait()
            self.chords_due.clear()
            await keep_trying(
                self.deliver_chord_failures, "failing chords", self.outage, _CALL_TIMEOUT_S
            )

    async def deliver_chord_failures(self) -> None:
        """One round on every queue (see `Broker.adeliver_chord_failures`)."""
        for queue in self.config.queues.names:
            delivered = await self.broker.adeliver_chord_failures(queue)
            if delivered:
                log.info("failed the chords of %d dead member(s) of %s", delivered, queue)
