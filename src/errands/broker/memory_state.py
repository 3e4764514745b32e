"""One in-memory queue: the data of the Redis keys, and one method per Redis Function.

This is a mirror of the Lua library in ``broker/redis/lua/``: `QueueState` holds what the keys
of ``00_shared.lua`` hold, and each public method does what the Lua function of the same name
does, with the same return codes. Keep the two in step; the conformance suite
(`errands.conformance`) holds both brokers to the same behaviour. Nothing here locks, waits or
reads a clock: `MemoryBroker` passes the time in and runs every call under its lock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from errands.broker.memory_chords import Chords
from errands.broker.memory_limits import (
    JobLimits,
    QueueLimits,
    WaitKind,
    free_run,
    limit_config,
)
from errands.broker.memory_maintain import maintain
from errands.broker.memory_outcomes import cancelled_outcome, chord_failure, stalled_outcome
from errands.broker.memory_records import (
    DEAD_MESSAGE,
    note_attempt,
    outcome_error,
    stamped,
)
from errands.broker.reading import payload_head
from errands.broker.settings import BrokerSettings
from errands.broker.types import (
    AckCode,
    CancelCode,
    Delivery,
    Enqueued,
    Fetched,
    HeartbeatReply,
    IdempotencyMode,
    JobSnapshot,
    Lease,
    MaintenanceReport,
    NewJob,
    Outcome,
    read_outcome,
)
from errands.broker.zset import ZSet
from errands.states import JobState

__all__ = ["JobMeta", "QueueState"]

PRIORITY_SPAN = 2**44  # sequence numbers stay below this, as in 00_shared.lua
MAX_BATCH = 1000
WAKE_TOKENS = 8
LOST_SPARE = 5  # as in 00_shared.lua: losses before a heartbeat, beyond max stalls, allowed
LIMIT_ROUNDS = 4  # as in fetch.lua: pops per fetch when jobs wait for limiters
_STALL = "its lease expired while it ran: its worker died or lost Redis"


@dataclass(slots=True)
class JobMeta:
    """The small mutable state of a live job (the ``meta`` hash of the Lua library).

    Attributes:
        state: queued, scheduled, active or dead.
        max_attempts: runs allowed in all (a retry is granted while attempts < this).
        priority: 0-9, higher first.
        max_stalls: lease expiries tolerated before the job is declared poison.
        result_ttl_ms: how long its outcome is kept.
        ignore_result: its outcome is not stored (nor published).
        attempts: runs charged so far.
        stalls: lease expiries so far.
        deliveries: times it was handed out; the lease token is this number as text.
        score: its place in ready (kept so a reaped or released job returns there).
        idempotency_key: the key it holds, if any.
        idempotency_mode: how long it holds it.
        worker: the worker holding its lease.
        fetched_ms: when its latest delivery was handed out (``f``).
        started: a heartbeat saw this delivery running.
        expired: it waits in ready because its lease expired (nobody took it since).
        lost: leases that expired before a heartbeat saw the job running.
        chord: for a chord member, (chord id, the chord's queue, the member's index).
        task, error_type, error_message: a dead job's task and error (for dead pages).
    """

    state: str
    max_attempts: int
    priority: int
    max_stalls: int
    result_ttl_ms: int
    ignore_result: bool
    attempts: int = 0
    stalls: int = 0
    deliveries: int = 0
    score: int = 0
    idempotency_key: str | None = None
    idempotency_mode: IdempotencyMode | None = None
    worker: str | None = None
    fetched_ms: int | None = None
    started: bool = False
    expired: bool = False
    lost: int = 0
    chord: tuple[str, str, int] | None = None
    task: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    limits: JobLimits | None = None  # a job of limited tasks (memory_limits.py)


class QueueState:
    """The data of one queue and its transitions, each one Lua function of the library.

    Every method takes `now`, the time in ms the Lua functions read with TIME. Outcomes to
    publish collect in `published` and `armed` says wake tokens were added; the broker drains
    both after each call to wake its waiters.

    Invariant (as in Lua): a job in ready, delayed, active or dead has meta and a payload. The
    Lua functions bury a record that breaks it (Redis holds bytes anyone may overwrite); here
    nothing else writes the data, so a KeyError would show a bug.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready, self.delayed, self.active, self.dead = ZSet(), ZSet(), ZSet(), ZSet()
        self.jobs: dict[str, bytes] = {}
        self.meta: dict[str, JobMeta] = {}
        self.results: dict[str, bytes] = {}
        self.results_x = ZSet()
        self.idem: dict[str, str] = {}
        self.idem_x = ZSet()
        self.wake: set[str] = set()
        self.seq = 0
        self.stats: dict[str, int] = {}
        self.history: dict[str, bytes] = {}
        self.progress: dict[str, bytes] = {}  # memory_progress.py
        self.cancel_requests: set[str] = set()
        self.workers: dict[str, bytes] = {}
        self.maint_until: int | None = None
        self.maint_owner: str | None = None
        self.paused = False
        self.published: list[tuple[str, bytes]] = []
        self.armed = False
        # Jobs sent to the dead set by the call under way, when it reports them (fetch, maintain).
        self.died: list[tuple[str, bytes]] | None = None
        self.chords = Chords(self.enqueue, self._store_chord_result)
        self.limits = QueueLimits()

    # Shared helpers (00_shared.lua) -----------------------------------------------------------

    def _incr(self, counter: str, by: int = 1) -> None:
        # HINCRBY is only called with a positive count, so a counter appears on first use.
        if by > 0:
            self.stats[counter] = self.stats.get(counter, 0) + by

    def _ready_score(self, priority: int) -> int:
        self.seq += 1
        return (9 - priority) * PRIORITY_SPAN + self.seq

    def _arm_wake(self, n: int) -> None:
        tokens = min(n, WAKE_TOKENS)
        self.wake.update(str(i) for i in range(1, tokens + 1))
        self.armed = self.armed or tokens > 0

    def _to_ready(self, job_id: str, m: JobMeta, score: int) -> None:
        m.state, m.worker, m.score, m.started = "queued", None, score, False
        self.ready.add(job_id, score)
        self.meta[job_id] = m

    def _release_idem(self, job_id: str, m: JobMeta) -> None:
        key = m.idempotency_key
        if key and m.idempotency_mode == "until_finished" and self.idem.get(key) == job_id:
            del self.idem[key]
            self.idem_x.discard(key)

    def _store_result(self, job_id: str, m: JobMeta, outcome: bytes, now: int) -> None:
        if not m.ignore_result:
            self.results[job_id] = outcome
            self.results_x.add(job_id, now + m.result_ttl_ms)
            self.published.append((job_id, outcome))

    def _finish(self, job_id: str, m: JobMeta, outcome: bytes, now: int) -> None:
        self._store_result(job_id, m, outcome, now)
        self._release_idem(job_id, m)
        self.jobs.pop(job_id, None)
        self.progress.pop(job_id, None)
        self.meta.pop(job_id, None)
        self.cancel_requests.discard(job_id)
        self.history.pop(job_id, None)
        if m.limits is not None:
            self.limits.unpark(job_id, m.limits)

    def _free_slots(self, job_id: str, m: JobMeta, now: int) -> None:
        """free_slots (01_limits.lua): each slot the job held makes its oldest waiter due."""
        if m.limits is None or not m.limits.holding:
            return
        for waiter in self.limits.free_slots(job_id, m.limits):
            w = self.meta.get(waiter)
            if w is not None and w.state == "scheduled" and w.limits is not None:
                w.limits.parked = None
                self.delayed.add(waiter, now)
                self._arm_wake(1)

    def _wait_for_limit(
        self, job_id: str, m: JobMeta, due: float, rid: str, kind: WaitKind
    ) -> None:
        """wait_for_limit (01_limits.lua): to delayed until its slot, no attempt spent."""
        assert m.limits is not None
        m.state, m.worker, m.started = "scheduled", None, False
        self.limits.park(job_id, m.limits, rid, kind)
        self.delayed.add(job_id, int(due))
        self._incr("limited")

    def _trim_dead(self, cap: int) -> int:
        excess = len(self.dead) - cap
        if excess <= 0:
            return 0
        gone = self.dead.pop_min(min(excess, MAX_BATCH))
        self._forget(gone)
        return len(gone)

    def _forget(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self.jobs.pop(job_id, None)
            self.meta.pop(job_id, None)
            self.history.pop(job_id, None)
            self.progress.pop(job_id, None)

    def _note_attempt(
        self, job_id: str, m: JobMeta, error: dict[str, Any] | None, now: int
    ) -> None:
        self.history[job_id] = note_attempt(
            self.history.get(job_id), m.attempts, m.worker, error, now
        )

    def _to_dead(self, job_id: str, m: JobMeta, outcome: bytes, now: int, cap: int) -> None:
        m.state, m.worker, m.started = "dead", None, False
        m.task = payload_head(self.jobs.get(job_id))[0]
        error = outcome_error(outcome)
        if error is not None:
            m.error_type = str(error.get("type", ""))
            m.error_message = str(error.get("message", ""))[:DEAD_MESSAGE]
        self.dead.add(job_id, now)
        self._store_result(job_id, m, outcome, now)
        self._release_idem(job_id, m)
        self.cancel_requests.discard(job_id)
        self._incr("failed")
        if self.died is not None:
            self.died.append((job_id, outcome))
        if m.chord is not None:
            chord, chord_queue, _ = m.chord
            note = chord_failure(chord, job_id, outcome, now)
            self.chords.notes[job_id] = (chord, chord_queue, note)
        self._trim_dead(cap)

    def _promote_due(self, now: int, limit: int) -> int:
        due = self.delayed.pop_min(limit, now)
        for job_id in due:
            m = self.meta[job_id]
            if m.limits is not None and m.limits.waiting:
                # It waited for a limiter: back to its place, ahead of the jobs sent after it.
                m.limits.waiting = False
                self.limits.unpark(job_id, m.limits)
                self._to_ready(job_id, m, m.score)
            else:
                self._to_ready(job_id, m, self._ready_score(m.priority))
        self._arm_wake(len(due))
        return len(due)

    def _reap_expired(self, now: int, limit: int, cap: int) -> int:
        expired = self.active.pop_min(limit, now)
        requeued = 0
        for job_id in expired:
            m = self.meta[job_id]
            self._free_slots(job_id, m, now)
            if m.started:
                m.stalls += 1
                self._incr("stalled")
            else:  # its worker died with it queued: no stall (see reap_expired in Lua)
                m.lost += 1
                self._incr("lost")
            if job_id in self.cancel_requests:
                # Asked to stop, and its worker is gone: it ends cancelled, as in reap_expired.
                m.attempts = max(m.attempts - 1, 0)
                self._finish(job_id, m, cancelled_outcome(m.attempts), now)
                self._incr("cancelled")
            elif m.stalls > m.max_stalls or m.lost > m.max_stalls + LOST_SPARE:
                outcome = stalled_outcome(
                    m.stalls, m.lost, m.max_stalls, m.attempts, m.deliveries, now
                )
                self._to_dead(job_id, m, outcome, now, cap)
            else:
                if m.started:
                    stall = {"type": "errands.errors.JobStalled", "message": _STALL}
                    self._note_attempt(job_id, m, stall, now)
                m.attempts = max(m.attempts - 1, 0)  # the attempt it was on is not charged
                m.expired = True  # its worker may still finish it (see ack)
                self._to_ready(job_id, m, m.score)
                requeued += 1
        self._arm_wake(requeued)
        return len(expired)

    def _holds_lease(self, lease: Lease) -> JobMeta | None:
        m = self.meta.get(lease.id)
        if m is None or m.state != "active" or str(m.deliveries) != lease.token:
            return None
        return m

    def _duplicate_of(self, now: int, job: NewJob) -> str | None:
        # A known id (live, or finished with its result still stored), else a live key's job.
        if job.id in self.meta or job.id in self.results:
            return job.id
        key = job.idempotency_key
        holder = self.idem.get(key) if key else None
        if key and holder is not None and (self.idem_x.score(key) or 0) > now:
            return holder
        return None

    def _pick(self, zset: ZSet, job_ids: Sequence[str], limit: int) -> list[str]:
        # The given ids, else the oldest `limit`; a limit of 0 or less picks nothing (as in Lua).
        limit = min(limit, MAX_BATCH)
        if job_ids:
            return list(job_ids[: max(limit, 0)])
        return [member for member, _ in zset.lowest(limit)]

    # One method per Lua function ---------------------------------------------------------------

    def enqueue(self, now: int, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """enqueue.lua: add jobs, skipping known ids and keys held inside their window."""
        out: list[Enqueued] = []
        added = 0
        for job in jobs:
            existing = self._duplicate_of(now, job)
            if existing is not None:
                out.append(Enqueued(existing, created=False))
                continue
            m = JobMeta(
                state="scheduled",
                max_attempts=job.max_attempts,
                priority=job.priority,
                max_stalls=job.max_stalls,
                result_ttl_ms=job.result_ttl_ms,
                ignore_result=job.ignore_result,
                chord=(job.chord, job.chord_queue, job.chord_index) if job.chord else None,
                limits=JobLimits(records=job.limits) if job.limits else None,
            )
            if job.idempotency_key:
                m.idempotency_key, m.idempotency_mode = job.idempotency_key, job.idempotency_mode
                self.idem[job.idempotency_key] = job.id
                self.idem_x.add(job.idempotency_key, now + job.idempotency_ttl_ms)
            self.jobs[job.id] = job.payload
            if job.delay_ms > 0:
                self.meta[job.id] = m
                self.delayed.add(job.id, now + job.delay_ms)
            else:
                self._to_ready(job.id, m, self._ready_score(job.priority))
            added += 1
            out.append(Enqueued(job.id, created=True))
        self._incr("enqueued", added)
        self._arm_wake(added)  # delayed jobs too, as in enqueue.lua
        return out

    def fetch(
        self,
        now: int,
        n: int,
        lease_ms: int,
        worker_id: str,
        settings: BrokerSettings,
        room: int | None = None,
    ) -> Fetched:
        """fetch.lua: promote, reap, then lease up to `n` jobs (none while paused)."""
        died: list[tuple[str, bytes]] = []
        self.died = died
        try:
            self._promote_due(now, settings.promote_limit)
            self._reap_expired(now, settings.reap_limit, settings.dead_max_count)
        finally:
            self.died = None
        if self.paused:
            return Fetched([], None, paused=True, died=died)
        jobs: list[Delivery] = []
        cfg = limit_config(settings.limits)
        wanted, popped, rounds = min(n, MAX_BATCH), 0, 0
        room = n if room is None else room  # places for jobs that name limiters
        while wanted > 0 and rounds < LIMIT_ROUNDS and popped < MAX_BATCH:
            rounds += 1
            ids = self.ready.pop_min(min(wanted, MAX_BATCH - popped))
            if not ids:
                break
            popped += len(ids)
            limited, held_back = 0, False
            for job_id in ids:
                m = self.meta[job_id]
                if m.limits is not None and m.limits.records:
                    if room <= 0:  # no place to start it at once: back to its place
                        self.ready.add(job_id, m.score)
                        held_back = True
                        continue
                    waits = self.limits.admit(job_id, m.limits, cfg, now, self.active.__contains__)
                    if waits is not None:
                        self._wait_for_limit(job_id, m, *waits)
                        limited += 1
                        continue
                    room -= 1
                m.attempts += 1
                m.deliveries += 1
                m.state, m.worker, m.started, m.expired = "active", worker_id, False, False
                m.fetched_ms = now
                self.active.add(job_id, now + lease_ms)
                jobs.append(Delivery(job_id, self.jobs[job_id], m.attempts, str(m.deliveries)))
            if limited == 0 or held_back:
                break
            wanted -= len(ids) - limited
        if popped == 0:
            self.wake.clear()  # nothing to hand out: idle workers should block, not spin
        first = self.delayed.first()
        lease = self.active.first()
        return Fetched(
            jobs,
            None if first is None else max(first[1] - now, 0),
            next_expiry_ms=None if lease is None else max(lease[1] - now, 0),
            more=popped > 0 and len(self.ready) > 0,
            died=died,
        )

    def ack(self, now: int, outcomes: Sequence[Outcome], settings: BrokerSettings) -> list[AckCode]:
        """ack.lua: settle outcomes; a stale token is refused, a late success taken."""
        codes: list[AckCode] = []
        done = retried = deferred = 0
        for o in outcomes:
            m = self._holds_lease(Lease(o.id, o.token)) or self._late_success(o)
            if m is None:
                codes.append(AckCode.STALE)
                continue
            if m.state == "active":
                self.active.discard(o.id)
                self._free_slots(o.id, m, now)
            else:
                self.ready.discard(o.id)
            if o.kind == "succeeded":
                self._finish(o.id, m, o.outcome, now)
                done += 1
                codes.append(AckCode.SUCCEEDED)
            elif o.kind != "failed" and o.id in self.cancel_requests:
                self._finish(o.id, m, cancelled_outcome(m.attempts), now)
                self._incr("cancelled")
                codes.append(AckCode.CANCELLED)
            elif free_run(o.kind, m.limits) or (
                o.kind in ("retrying", "limited") and m.attempts < m.max_attempts
            ):
                if free_run(o.kind, m.limits):
                    m.attempts = max(m.attempts - 1, 0)
                    deferred += 1
                    if o.kind == "limited":
                        m.limits = self.limits.rate_limited(m.limits, now + o.retry_delay_ms)
                else:
                    retried += 1
                    self._note_attempt(o.id, m, outcome_error(o.outcome), now)
                m.state, m.worker, m.started = "scheduled", None, False
                self.delayed.add(o.id, now + o.retry_delay_ms)
                codes.append(AckCode.RETRYING)
            else:
                self._to_dead(o.id, m, o.outcome, now, settings.dead_max_count)
                codes.append(AckCode.DEAD)
        self._incr("succeeded", done)
        self._incr("retried", retried)
        self._incr("deferred", deferred)
        return codes

    def _late_success(self, o: Outcome) -> JobMeta | None:
        # ack.lua: a success whose lease was reaped, while nobody took the job since.
        m = self.meta.get(o.id)
        if m is None or o.kind != "succeeded" or not m.expired or str(m.deliveries) != o.token:
            return None
        return m

    def heartbeat(
        self,
        now: int,
        worker_id: str,
        worker_info: bytes,
        leases: Sequence[Lease],
        lease_ms: int,
        started: Collection[str] = (),
    ) -> HeartbeatReply:
        """heartbeat.lua: renew held leases, mark the started; report lost ones and stops."""
        lost: list[str] = []
        cancelled: list[str] = []
        holding: list[str] = []
        for lease in leases:
            m = self._holds_lease(lease)
            if m is None:
                lost.append(lease.id)
                continue
            holding.append(lease.id)
            m.started = m.started or lease.id in started
            if lease.id in self.active:
                self.active.add(lease.id, now + lease_ms)
            if lease.id in self.cancel_requests:
                cancelled.append(lease.id)
        self.workers[worker_id] = stamped(worker_info, now, holding)
        return HeartbeatReply(lost, cancelled)

    def release(self, now: int, leases: Sequence[Lease]) -> int:
        """release.lua: give held jobs back to their place, refunding the attempt."""
        released = 0
        for lease in leases:
            m = self._holds_lease(lease)
            if m is not None:
                self.active.discard(lease.id)
                self._free_slots(lease.id, m, now)
                m.attempts = max(m.attempts - 1, 0)
                if lease.id in self.cancel_requests:
                    self._finish(lease.id, m, cancelled_outcome(m.attempts), now)
                    self._incr("cancelled")
                    continue
                self._to_ready(lease.id, m, m.score)
                released += 1
        self._arm_wake(released)
        return released

    def cancel(self, now: int, job_id: str) -> CancelCode:
        """cancel.lua: cancel a queued, scheduled or dead job; flag a running one."""
        m = self.meta.get(job_id)
        if m is None:
            return CancelCode.NOT_FOUND
        if m.state == "active":
            self.cancel_requests.add(job_id)
            return CancelCode.REQUESTED
        code = CancelCode.CANCELLED
        if m.state == "queued":
            self.ready.discard(job_id)
        elif m.state == "scheduled":
            self.delayed.discard(job_id)
        else:
            self.dead.discard(job_id)
            code = CancelCode.REMOVED_FROM_DEAD
        self._finish(job_id, m, cancelled_outcome(m.attempts), now)
        self._incr("cancelled")
        return code

    def maintain(
        self, now: int, owner: str, lock_ms: int, settings: BrokerSettings
    ) -> MaintenanceReport | None:
        """maintain.lua: bounded housekeeping; None while another owner holds the lock."""
        return maintain(self, now, owner, lock_ms, settings)

    def result(self, now: int, job_id: str) -> JobSnapshot:
        """read.lua (errands_v1_result): the stored outcome while unexpired, else the state."""
        outcome = self.results.get(job_id)
        m = self.meta.get(job_id)
        if outcome is not None and (self.results_x.score(job_id) or 0) > now:
            state, attempts = read_outcome(outcome)
            return JobSnapshot(state, outcome, attempts or (m.attempts if m else 0))
        if m is not None:
            return JobSnapshot(JobState.parse(m.state), None, m.attempts)
        if job_id in self.chords.records:
            return JobSnapshot(JobState.WAITING, None, 0)  # a chord's callback, not a job yet
        return JobSnapshot(JobState.UNKNOWN, None, 0)

    # Chords (chord.lua; the rest is in `chords`) ---------------------------------------------

    def _store_chord_result(
        self, chord_id: str, outcome: bytes, result_ttl_ms: int, ignore_result: bool, now: int
    ) -> None:
        if not ignore_result:
            self.results[chord_id] = outcome
            self.results_x.add(chord_id, now + result_ttl_ms)
            self.published.append((chord_id, outcome))
        self._incr("failed")

    def chord_start(
        self,
        now: int,
        chord_id: str,
        size: int,
        callback: NewJob,
        placeholder: bytes,
        send_within_ms: int,
    ) -> bool:
        """errands_v1_chord_start: record a chord; False when already known."""
        if chord_id in self.meta:
            return False
        return self.chords.start(now, chord_id, size, callback, placeholder, send_within_ms)
