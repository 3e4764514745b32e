"""Random sequences of queue operations against the real Redis Functions, checked against a model.

A hypothesis state machine enqueues (priorities, delays, idempotency keys), fetches (long and
short leases), acks (ok, retry, fail; live and stale tokens), heartbeats, releases, cancels,
redrives and pauses. `Model` says in plain Python what each Lua function promises; after every
step the keys of the queue are read directly and must agree with it, and with the invariants
of lua/00_shared.lua: every job is in exactly one of ready, delayed, active, dead or finished,
none is lost, none finishes twice, attempts never exceed the maximum, meta exists exactly for
the jobs in the four sets, and `jobs` and `meta` hold the same ids.

Deadlines come from the server clock (TIME), so time is made deterministic: a timer (delay,
retry delay, lease) is either short (10 ms) or long (a minute or more), every fetch first sleeps
until every short timer has run out, and no two calls share a server millisecond, so the order
of the scores is the order of the calls. The model learns each score a call sets by reading it
back, and checks it against the clock readings taken around the call. The same choices thus
always lead to the same states, as hypothesis needs to replay and shrink a failure.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from errands.broker.base import BrokerSettings
from errands.broker.redis import RedisBroker
from errands.broker.redis.keys import QueueKeys
from errands.broker.types import AckCode, Lease, NewJob, Outcome, OutcomeKind

T = TypeVar("T")
Place = Literal["ready", "delayed", "active", "dead", "finished"]

QUEUE = "sm"
SHORT_MS = 10  # a timer that runs out before the next fetch: the fetch waits past it
LONG_MS = 3_600_000  # a timer that never runs out during an example
LONG_LEASE_MS = 60_000
PRIORITY_SPAN = 2**44  # as in 00_shared.lua: the ready score is (9 - priority) * span + sequence
DEAD_CAP = 2  # small, so that trimming the dead-letter set happens
STEP_LIMIT = 2  # promote and reap limits per fetch: small, so that the bounds matter
TIMED: tuple[Place, ...] = ("delayed", "active", "dead")
SETS: tuple[Place, ...] = ("ready", "delayed", "active", "dead")
META_STATE = {"ready": "queued", "delayed": "scheduled", "active": "active", "dead": "dead"}
KINDS: tuple[OutcomeKind, ...] = ("succeeded", "retrying", "failed", "deferred")
LOST_SPARE = 5  # as in 00_shared.lua: leases lost unseen beyond max stalls before a job is dead


@dataclass(frozen=True)
class JobSpec:
    """One job of an enqueue batch, as hypothesis draws it."""

    priority: int
    delay_ms: int
    idempotency_key: str | None
    until_finished: bool
    max_attempts: int
    max_stalls: int
    ignore_result: bool
    reuse: int | None  # index of a known id to send again; None: a new id


sometimes = st.sampled_from((False, False, False, False, True))
job_specs = st.builds(
    JobSpec,
    priority=st.integers(0, 9),
    delay_ms=st.sampled_from((0, 0, SHORT_MS, LONG_MS)),
    idempotency_key=sometimes.flatmap(
        lambda yes: st.sampled_from(("k1", "k2")) if yes else st.none()
    ),
    until_finished=st.booleans(),
    max_attempts=st.integers(1, 3),
    max_stalls=st.integers(0, 1),
    ignore_result=sometimes,
    reuse=sometimes.flatmap(lambda yes: st.integers(0, 3) if yes else st.none()),
)


@dataclass
class ModelJob:
    """What the model knows of one job."""

    id: str
    priority: int
    max_attempts: int
    max_stalls: int
    ignore_result: bool
    idem_key: str | None
    until_finished: bool
    payload: bytes
    place: Place = "ready"
    ready_score: int = 0  # meta sc: its place in ready
    timer: int | None = None  # its score in delayed, active or dead; None until read back
    timer_delay: int = 0  # what the call added to its clock to set `timer`
    attempts: int = 0
    deliveries: int = 0  # the lease token
    stalls: int = 0
    lost: int = 0  # leases that expired before a heartbeat saw the job running
    started: bool = False  # a heartbeat saw this delivery running
    expired: bool = False  # waits in ready after its lease expired, nobody took it since
    worker: str | None = None
    cancel_requested: bool = False
    result: str | None = None  # the state of its stored outcome


def _order(job: ModelJob) -> tuple[int, str]:
    """Redis orders a ZSET by score, then by member."""
    return (job.ready_score if job.place == "ready" else job.timer or 0), job.id


class Model:
    """What the Lua functions promise, in plain Python."""

    def __init__(self) -> None:
        self.jobs: dict[str, ModelJob] = {}
        self.seq = 0
        self.idem: dict[str, str] = {}
        self.paused = False
        self.stats: Counter[str] = Counter()

    def at(self, place: Place) -> list[ModelJob]:
        """The jobs in `place`, in Redis order."""
        return sorted((j for j in self.jobs.values() if j.place == place), key=_order)

    def _next_score(self, priority: int) -> int:
        self.seq += 1
        return (9 - priority) * PRIORITY_SPAN + self.seq

    @staticmethod
    def _to_ready(job: ModelJob, score: int) -> None:
        job.place, job.ready_score, job.timer, job.worker = "ready", score, None, None

    @staticmethod
    def _start_timer(job: ModelJob, place: Place, delay_ms: int) -> None:
        job.place, job.timer, job.timer_delay = place, None, delay_ms

    def _end(self, job: ModelJob, result: str) -> None:
        job.result = None if job.ignore_result else result
        job.cancel_requested = False
        job.worker = None
        if job.idem_key and job.until_finished and self.idem.get(job.idem_key) == job.id:
            del self.idem[job.idem_key]

    def _finish(self, job: ModelJob, result: str) -> None:
        self._end(job, result)
        job.place, job.timer = "finished", None

    def _to_dead(self, job: ModelJob) -> None:
        self._end(job, "failed")
        self._start_timer(job, "dead", 0)
        self.stats["failed"] += 1

    def enqueue(self, batch: Sequence[NewJob]) -> list[tuple[str, bool]]:
        """errands_v1_enqueue."""
        replies: list[tuple[str, bool]] = []
        for new in batch:
            known = self.jobs.get(new.id)
            if known is not None and (known.place != "finished" or known.result is not None):
                replies.append((new.id, False))
                continue
            key = new.idempotency_key
            if key is not None and key in self.idem:
                replies.append((self.idem[key], False))
                continue
            job = ModelJob(
                id=new.id,
                priority=new.priority,
                max_attempts=new.max_attempts,
                max_stalls=new.max_stalls,
                ignore_result=new.ignore_result,
                idem_key=key,
                until_finished=new.idempotency_mode == "until_finished",
                payload=new.payload,
            )
            self.jobs[new.id] = job
            if key is not None:
                self.idem[key] = new.id
            if new.delay_ms > 0:
                self._start_timer(job, "delayed", new.delay_ms)
            else:
                self._to_ready(job, self._next_score(job.priority))
            self.stats["enqueued"] += 1
            replies.append((new.id, True))
        return replies

    def fetch(self, n: int, now: int, lease_ms: int, worker: str) -> list[ModelJob] | None:
        """errands_v1_fetch at server time `now`; None when the queue is paused."""
        for job in [j for j in self.at("delayed") if (j.timer or 0) <= now][:STEP_LIMIT]:
            self._to_ready(job, self._next_score(job.priority))
        for job in [j for j in self.at("active") if (j.timer or 0) <= now][:STEP_LIMIT]:
            if job.started:
                job.stalls += 1
                self.stats["stalled"] += 1
            else:
                job.lost += 1
                self.stats["lost"] += 1
            job.started = False
            if job.cancel_requested:
                job.attempts = max(job.attempts - 1, 0)
                self._finish(job, "cancelled")
                self.stats["cancelled"] += 1
            elif job.stalls > job.max_stalls or job.lost > job.max_stalls + LOST_SPARE:
                self._to_dead(job)
            else:
                job.attempts = max(job.attempts - 1, 0)
                self._to_ready(job, job.ready_score)
                job.expired = True
        if self.paused:
            return None
        handed = self.at("ready")[:n]
        for job in handed:
            job.attempts += 1
            job.deliveries += 1
            job.worker = worker
            job.started = job.expired = False
            self._start_timer(job, "active", lease_ms)
        return handed

    def holds(self, lease: Lease) -> ModelJob | None:
        """The job `lease` still holds, if it does."""
        job = self.jobs.get(lease.id)
        if job is None or job.place != "active" or str(job.deliveries) != lease.token:
            return None
        return job

    def late(self, outcome: Outcome) -> ModelJob | None:
        """The job a late success settles: reaped, and nobody took it since."""
        job = self.jobs.get(outcome.id)
        if job is None or outcome.kind != "succeeded" or not job.expired or job.place != "ready":
            return None
        return job if str(job.deliveries) == outcome.token else None

    def ack(self, outcomes: Sequence[Outcome]) -> list[int]:
        """errands_v1_ack."""
        codes: list[int] = []
        for outcome in outcomes:
            job = self.holds(Lease(outcome.id, outcome.token)) or self.late(outcome)
            if job is None:
                codes.append(0)
                continue
            job.started = job.expired = False
            if outcome.kind == "succeeded":
                self._finish(job, "succeeded")
                self.stats["succeeded"] += 1
                codes.append(1)
            elif outcome.kind != "failed" and job.cancel_requested:
                self._finish(job, "cancelled")
                self.stats["cancelled"] += 1
                codes.append(4)
            elif outcome.kind == "deferred" or (
                outcome.kind == "retrying" and job.attempts < job.max_attempts
            ):
                if outcome.kind == "deferred":
                    job.attempts = max(job.attempts - 1, 0)
                    self.stats["deferred"] += 1
                else:
                    self.stats["retried"] += 1
                job.worker = None
                self._start_timer(job, "delayed", outcome.retry_delay_ms)
                codes.append(2)
            else:
                self._to_dead(job)
                codes.append(3)
        return codes

    def heartbeat(
        self, leases: Sequence[Lease], lease_ms: int, started: set[str]
    ) -> tuple[list[str], list[str]]:
        """errands_v1_heartbeat: (lost, cancelled)."""
        lost: list[str] = []
        cancelled: list[str] = []
        for lease in leases:
            job = self.holds(lease)
            if job is None:
                lost.append(lease.id)
                continue
            job.started = job.started or lease.id in started
            self._start_timer(job, "active", lease_ms)
            if job.cancel_requested:
                cancelled.append(lease.id)
        return lost, cancelled

    def release(self, leases: Sequence[Lease]) -> int:
        """errands_v1_release."""
        released = 0
        for lease in leases:
            job = self.holds(lease)
            if job is None:
                continue
            job.attempts = max(job.attempts - 1, 0)
            job.started = False
            if job.cancel_requested:
                self._finish(job, "cancelled")
                self.stats["cancelled"] += 1
            else:
                self._to_ready(job, job.ready_score)
                released += 1
        return released

    def cancel(self, job_id: str) -> int:
        """errands_v1_cancel."""
        job = self.jobs.get(job_id)
        if job is None or job.place == "finished":
            return 0
        if job.place == "active":
            job.cancel_requested = True
            return 2
        code = 3 if job.place == "dead" else 1
        self._finish(job, "cancelled")
        self.stats["cancelled"] += 1
        return code

    def redrive(self, job_ids: Sequence[str], limit: int) -> list[str]:
        """errands_v1_redrive."""
        chosen = list(job_ids[:limit]) if job_ids else [j.id for j in self.at("dead")[:limit]]
        moved: list[str] = []
        for job_id in chosen:
            job = self.jobs.get(job_id)
            if job is not None and job.place == "dead":
                job.result = None
                job.attempts = job.stalls = job.lost = 0
                job.idem_key = None
                self._to_ready(job, self._next_score(job.priority))
                moved.append(job_id)
        return moved

    def dead_after_trim(self, now: int) -> dict[str, int]:
        """The dead set once the jobs that died at `now` are in and the oldest are trimmed."""
        scored = sorted(((now if j.timer is None else j.timer), j.id) for j in self.at("dead"))
        return {job_id: score for score, job_id in scored[max(len(scored) - DEAD_CAP, 0) :]}

    def trim_dead(self, now: int) -> None:
        """Apply `dead_after_trim`: trimmed jobs lose meta and payload, their result stays."""
        kept = self.dead_after_trim(now)
        for job in self.at("dead"):
            if job.id in kept:
                job.timer = kept[job.id]
            else:
                job.place, job.timer = "finished", None


def _outcome_json(kind: OutcomeKind, job_id: str) -> bytes:
    if kind == "succeeded":
        return json.dumps({"state": "succeeded", "result": job_id}).encode()
    return json.dumps({"state": "failed", "error": {"type": "E", "message": kind}}).encode()


class QueueMachine(RuleBasedStateMachine):
    """Drives one queue in a fresh namespace through random operations."""

    redis_url: ClassVar[str] = ""
    base_namespace: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.namespace = f"{self.base_namespace}:{uuid.uuid4().hex[:8]}"
        bounds = BrokerSettings(
            dead_max_count=DEAD_CAP, promote_limit=STEP_LIMIT, reap_limit=STEP_LIMIT
        )
        self.broker = RedisBroker(self.redis_url, namespace=self.namespace, settings=bounds)
        self.keys = QueueKeys(self.namespace, QUEUE)
        self.redis = redis.Redis.from_url(self.redis_url)
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.leases: list[Lease] = []
        self.ids: list[str] = []
        self.last_call_ms = 0

    def teardown(self) -> None:
        try:
            stale = list(self.redis.scan_iter(match=f"{self.namespace}:*", count=1000))
            if stale:
                self.redis.delete(*stale)
        finally:
            self.redis.close()
            self.broker.close()
            self.loop.run_until_complete(self.broker.aclose())
            self.loop.close()

    # Plumbing ---------------------------------------------------------------------------------

    def _key(self, suffix: str) -> str:
        return self.keys.prefix + suffix

    def _server_ms(self) -> int:
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _wait_until(self, ms: int) -> int:
        """Sleep until the server clock reads at least `ms`; return the clock."""
        now = self._server_ms()
        while now < ms:
            time.sleep((ms - now) / 1000 + 0.0002)
            now = self._server_ms()
        return now

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(call)

    def _call(self, call: Callable[[], T]) -> tuple[T, int, int]:
        """Run one broker call on a server millisecond no other call shares.

        Returns the reply and the clock before and after: the call's TIME lies between. Distinct
        milliseconds keep the order of the scores calls set the order of the calls.
        """
        t0 = self._wait_until(self.last_call_ms + 1)
        reply = call()
        t1 = self.last_call_ms = self._server_ms()
        return reply, t0, t1

    def _zset(self, place: Place) -> dict[str, int]:
        entries: list[tuple[bytes, float]] = self.redis.zrange(  # type: ignore[assignment]
            self._key(place), 0, -1, withscores=True
        )
        return {member.decode(): int(score) for member, score in entries}

    def _read_back_timers(self, t0: int, t1: int) -> None:
        """Learn the scores the last call set, check them against the clock, then trim dead."""
        pending = [j for j in self.model.jobs.values() if j.place in TIMED and j.timer is None]
        if not pending:
            return
        actual = {place: self._zset(place) for place in TIMED}
        clock: set[int] = set()
        for job in pending:
            if job.place != "dead":
                assert job.id in actual[job.place], f"{job.id} should be in {job.place}"
                job.timer = actual[job.place][job.id]
                clock.add(job.timer - job.timer_delay)
        if any(j.place == "dead" for j in pending):
            candidates = sorted(clock) or list(range(t0, t1 + 1))
            matching = [n for n in candidates if self.model.dead_after_trim(n) == actual["dead"]]
            assert matching, (
                f"dead set {actual['dead']} is not the newest {DEAD_CAP} of "
                f"{[(j.id, j.timer) for j in self.model.at('dead')]} at any time in {candidates}"
            )
            if len(self.model.dead_after_trim(matching[0])) < len(self.model.at("dead")):
                event("dead set trimmed")
            self.model.trim_dead(matching[0])
            clock.add(matching[0])
        assert len(clock) == 1, f"one call set scores from several clock readings: {clock}"
        assert t0 <= min(clock) <= t1, f"a score came from {clock}, outside [{t0}, {t1}]"

    def _lease_choice(self) -> st.SearchStrategy[Lease]:
        live = [lease for lease in self.leases if self.model.holds(lease) is not None]
        everything = st.sampled_from(self.leases)
        # Mostly live leases, so that jobs move on; stale ones must be refused.
        return st.one_of(*[st.sampled_from(live)] * 3, everything) if live else everything

    # Rules ------------------------------------------------------------------------------------

    @initialize(specs=st.lists(job_specs, min_size=2, max_size=6))
    def start_with_a_batch(self, specs: list[JobSpec]) -> None:
        self.enqueue(specs)

    @rule(specs=st.lists(job_specs, min_size=1, max_size=3))
    def enqueue(self, specs: list[JobSpec]) -> None:
        batch = []
        for spec in specs:
            if spec.reuse is not None and self.ids:
                job_id = self.ids[-1 - spec.reuse % len(self.ids)]
            else:
                job_id = f"j{len(self.ids):03d}"
                self.ids.append(job_id)
            batch.append(
                NewJob(
                    id=job_id,
                    payload=f"payload of {job_id}".encode(),
                    priority=spec.priority,
                    delay_ms=spec.delay_ms,
                    idempotency_key=spec.idempotency_key,
                    idempotency_ttl_ms=LONG_MS,
                    idempotency_mode="until_finished" if spec.until_finished else "window",
                    max_attempts=spec.max_attempts,
                    ignore_result=spec.ignore_result,
                    max_stalls=spec.max_stalls,
                )
            )
        replies, t0, t1 = self._call(lambda: self.broker.enqueue(QUEUE, batch))
        expected = self.model.enqueue(batch)
        assert [(r.id, r.created) for r in replies] == expected
        if not all(created for _, created in expected):
            event("enqueue found a duplicate")
        self._read_back_timers(t0, t1)
        if any(created and self.model.jobs[i].place == "ready" for i, created in expected):
            assert self.redis.zcard(self.keys.wake) > 0, "new ready jobs must wake a worker"

    @rule(
        n=st.integers(1, 4),
        lease_ms=st.sampled_from((LONG_LEASE_MS, LONG_LEASE_MS, SHORT_MS)),
        worker=st.sampled_from(("w1", "w2")),
    )
    def fetch(self, n: int, lease_ms: int, worker: str) -> None:
        """Fetch, after sleeping just past every short timer (delays, retries, leases)."""
        timed = self.model.at("delayed") + self.model.at("active")
        self._wait_until(max((j.timer or 0 for j in timed if j.timer_delay <= SHORT_MS), default=0))
        fetched, t0, t1 = self._call(
            lambda: self._run(self.broker.fetch(QUEUE, n, lease_ms, worker))
        )
        stalled_before = self.model.stats["stalled"]
        handed = self.model.fetch(n, t0, lease_ms, worker)
        if self.model.stats["stalled"] > stalled_before:
            event("fetch reaped an expired lease")
        self._read_back_timers(t0, t1)
        if handed is None:
            assert fetched.paused
            assert fetched.jobs == []
            return
        assert not fetched.paused
        got = [(d.id, d.payload, d.attempt, d.token) for d in fetched.jobs]
        assert got == [(j.id, j.payload, j.attempts, str(j.deliveries)) for j in handed]
        assert fetched.more == (bool(handed) and bool(self.model.at("ready")))
        for delivery in fetched.jobs:
            assert delivery.attempt <= self.model.jobs[delivery.id].max_attempts
            lease = Lease(delivery.id, delivery.token)
            if lease not in self.leases:
                self.leases.append(lease)
        delayed = self.model.at("delayed")
        if not delayed:
            assert fetched.next_due_ms is None
        else:
            first = delayed[0].timer or 0
            assert fetched.next_due_ms is not None
            assert max(first - t1, 0) <= fetched.next_due_ms <= max(first - t0, 0)
        if not handed:
            assert not self.redis.exists(self.keys.wake), "an empty fetch must clear wake tokens"

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        leases = data.draw(st.lists(self._lease_choice(), min_size=1, max_size=3), label="leases")
        outcomes = [
            Outcome(
                lease.id,
                lease.token,
                kind,
                _outcome_json(kind, lease.id),
                data.draw(st.sampled_from((SHORT_MS, LONG_MS)), label="retry delay"),
            )
            for lease in leases
            for kind in [data.draw(st.sampled_from(KINDS), label=f"kind for {lease}")]
        ]
        codes, t0, t1 = self._call(lambda: self._run(self.broker.ack(QUEUE, outcomes)))
        expected = self.model.ack(outcomes)
        assert [int(c) for c in codes] == expected
        for code in expected:
            event(f"ack code {code}")
        self._read_back_timers(t0, t1)

    @precondition(lambda self: self.leases)
    @rule(
        data=st.data(),
        lease_ms=st.sampled_from((LONG_LEASE_MS, SHORT_MS)),
        worker=st.sampled_from(("w1", "w2")),
    )
    def heartbeat(self, data: st.DataObject, lease_ms: int, worker: str) -> None:
        leases = data.draw(st.lists(self._lease_choice(), max_size=3), label="leases")
        started = {lease.id for lease in leases if data.draw(st.booleans(), f"{lease} started")}
        info = json.dumps({"seen": self.last_call_ms}).encode()
        reply, t0, t1 = self._call(
            lambda: self._run(self.broker.heartbeat(QUEUE, worker, info, leases, lease_ms, started))
        )
        assert (reply.lost, reply.cancelled) == self.model.heartbeat(leases, lease_ms, started)
        self._read_back_timers(t0, t1)

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        leases = data.draw(st.lists(self._lease_choice(), min_size=1, max_size=3), label="leases")
        released, _, _ = self._call(lambda: self._run(self.broker.release(QUEUE, leases)))
        expected = self.model.release(leases)
        assert released == expected
        event(f"release gave back {expected}")

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        running = [j.id for j in self.model.at("active")]
        anything = st.sampled_from([*self.ids, "never-sent"])
        job_id = data.draw(st.sampled_from(running) | anything if running else anything, "job")
        code, _, _ = self._call(lambda: self.broker.cancel(QUEUE, job_id))
        expected = self.model.cancel(job_id)
        assert int(code) == expected
        event(f"cancel code {expected}")

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), limit=st.integers(1, 3))
    def redrive(self, data: st.DataObject, limit: int) -> None:
        dead = st.sampled_from([j.id for j in self.model.at("dead")] or self.ids)
        job_ids = data.draw(st.lists(dead | st.sampled_from(self.ids), max_size=3), "job ids")
        moved, _, _ = self._call(lambda: self.broker.redrive(QUEUE, job_ids, limit))
        expected = self.model.redrive(job_ids, limit)
        assert moved == expected
        if expected:
            event("redrive moved jobs")

    @rule(paused=st.booleans())
    def pause(self, paused: bool) -> None:
        self.broker.set_paused(QUEUE, paused)
        self.model.paused = paused

    # Invariants -------------------------------------------------------------------------------

    @invariant()
    def redis_holds_what_the_model_says(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for place in SETS:
            pipe.zrange(self._key(place), 0, -1, withscores=True)
        for suffix in ("jobs", "meta", "results", "idem", "stats"):
            pipe.hgetall(self._key(suffix))
        for suffix in ("results_x", "idem_x"):
            pipe.zrange(self._key(suffix), 0, -1)
        pipe.smembers(self._key("cancel"))
        replies: list[Any] = pipe.execute()
        sets = {place: {m.decode(): int(s) for m, s in replies[i]} for i, place in enumerate(SETS)}
        jobs, meta, results, idem, stats = (
            {k.decode(): v for k, v in reply.items()} for reply in replies[4:9]
        )
        results_x, idem_x = ({m.decode() for m in reply} for reply in replies[9:11])
        cancel = {m.decode() for m in replies[11]}

        every = [job_id for members in sets.values() for job_id in members]
        assert len(every) == len(set(every)), f"a job is in two sets: {sets}"
        assert set(every) <= set(self.model.jobs), f"unknown ids in {sets}"
        assert set(meta) == set(every), "meta must exist exactly for the jobs in the four sets"
        assert set(jobs) == set(meta), "jobs and meta must hold the same ids"

        for job in self.model.jobs.values():
            place = next((p for p, members in sets.items() if job.id in members), "finished")
            assert place == job.place, f"{job.id} is {place}, the model says {job.place}"
            if place == "finished":
                continue
            expected_score = job.ready_score if place == "ready" else job.timer
            assert sets[place][job.id] == expected_score, f"{job.id} has the wrong score"
            assert jobs[job.id] == job.payload
            m = msgspec.msgpack.decode(meta[job.id])
            assert m["a"] <= m["m"], f"{job.id} was charged {m['a']} of {m['m']} attempts"
            assert (m["s"], m["a"], m["m"], m["p"], m["sc"], m["st"], m["d"], m.get("w")) == (
                META_STATE[place],
                job.attempts,
                job.max_attempts,
                job.priority,
                job.ready_score,
                job.stalls,
                job.deliveries,
                job.worker,
            ), f"meta of {job.id}: {m}"
            assert (m.get("r") == 1, m.get("lo", 0), m.get("ex") == 1) == (
                job.started,
                job.lost,
                job.expired,
            ), f"lease marks of {job.id}: {m}"
            assert m.get("ik") == job.idem_key

        expected_results = {j.id: j.result for j in self.model.jobs.values() if j.result}
        assert {k: json.loads(v)["state"] for k, v in results.items()} == expected_results
        assert results_x == set(results)
        assert {k: v.decode() for k, v in idem.items()} == self.model.idem
        assert idem_x == set(idem)
        assert cancel == {j.id for j in self.model.jobs.values() if j.cancel_requested}
        assert {k: int(v) for k, v in stats.items()} == +self.model.stats


# Green, this takes about 10 s. Red, hypothesis shrinks the failure to a short sequence of steps,
# which takes minutes (it stops shrinking after 5): the timeout leaves room for that, so that a
# failure ends with its minimal example rather than with a timeout.
@pytest.mark.timeout(480)
def test_random_operations_keep_every_job_in_exactly_one_place(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QueueMachine, "redis_url", redis_url)
    monkeypatch.setattr(QueueMachine, "base_namespace", namespace)
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            deadline=None,
            report_multiple_bugs=False,  # shrink one failure, fast, rather than several slowly
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


async def test_a_stale_record_does_not_refuse_a_live_one_for_the_same_job(
    broker: RedisBroker,
) -> None:
    broker.enqueue(QUEUE, [NewJob(id="once", payload=b"{}")])
    try:
        first = (await broker.fetch(QUEUE, 1, LONG_LEASE_MS, "w1")).jobs[0]
        assert await broker.release(QUEUE, [Lease(first.id, first.token)]) == 1
        second = (await broker.fetch(QUEUE, 1, LONG_LEASE_MS, "w1")).jobs[0]
        codes = await broker.ack(
            QUEUE,
            [
                Outcome(first.id, first.token, "succeeded", _outcome_json("succeeded", first.id)),
                Outcome(
                    second.id, second.token, "succeeded", _outcome_json("succeeded", second.id)
                ),
            ],
        )
        assert codes == [AckCode.STALE, AckCode.SUCCEEDED]
    finally:
        await broker.aclose()
