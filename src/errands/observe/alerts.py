"""Alerts: rules evaluated by one elected process, incidents sent to webhooks and PagerDuty.

Declared on the app::

    from errands.observe.alerts import DeadJobs, NoConsumer, PagerDuty

    app.alerts(DeadJobs(), NoConsumer(over=120), sinks=[PagerDuty(routing_key="...")])

and evaluated by ``errands alerts APP`` (or inside ``errands beat`` / ``errands worker --beat``).
Any number of evaluators may run: they share a leader lease in Redis (the scheduler's kind, on
its own keys), and only the leader reads the broker (through the inspector, bounded pages every
`Alerts.every_s`), evaluates the rules (`errands.observe.alert_rules`) and sends. Incidents are
kept in Redis under the lease's fence, so an evaluator that takes over neither triggers an open
incident again nor forgets to resolve it. An incident is one trigger and one resolve for each
sink, under one ``dedup_key``, however many jobs it counts.

Delivery is at least once: an evaluator that dies after a sink took a request and before the
incident recorded it makes the next leader send it again (PagerDuty folds it by ``dedup_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from errands.errors import BrokerError, ConfigurationError
from errands.observe.alert_rules import (
    AlertRule,
    DeadJobs,
    DeadRate,
    Finding,
    MissedFires,
    NoConsumer,
    OldestReady,
    QueueReading,
    Reading,
    RuleMemory,
    ScheduleReading,
)
from errands.observe.alert_sinks import Action, Outbox, PagerDuty, Request, Sink, Webhook, post
from errands.result import seconds

if TYPE_CHECKING:
    from errands.app import App

__all__ = [
    "AlertEvaluator",
    "AlertRule",
    "AlertStore",
    "Alerts",
    "DeadJobs",
    "DeadRate",
    "Incident",
    "MissedFires",
    "NoConsumer",
    "OldestReady",
    "PagerDuty",
    "Sink",
    "Webhook",
    "advance_incidents",
]

log = logging.getLogger("errands.alerts")

#: How long an evaluator's lease lasts unrenewed, and how often each evaluator renews it.
LEASE_S = 15.0
RENEW_S = 3.0
#: At most this many queues are read per evaluation (pages of 100).
MAX_QUEUES = 1_000


class Alerts:
    """An app's alerting: its rules, its sinks and how often the rules are evaluated.

    Args:
        rules: what to watch (`errands.observe.alert_rules`).
        sinks: where incidents go; names must differ.
        every: seconds between evaluations.
    """

    def __init__(
        self, rules: Sequence[AlertRule], sinks: Sequence[Sink], every: float | timedelta = 5.0
    ) -> None:
        if not rules:
            raise ConfigurationError("alerts need at least one rule, e.g. DeadJobs()")
        for rule in rules:
            if not isinstance(rule, AlertRule):
                raise ConfigurationError(
                    f"{rule!r} is not an alert rule: give DeadJobs(), OldestReady(over=...), "
                    "NoConsumer(over=...), DeadRate(per_minute=...) or MissedFires()"
                )
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ConfigurationError(
                "each rule may be given once: one DeadJobs(queues=[...]) covers several queues"
            )
        if not sinks:
            raise ConfigurationError("alerts need a sink: Webhook(url) or PagerDuty(routing_key)")
        sink_names = [sink.name for sink in sinks]
        if len(set(sink_names)) != len(sink_names):
            raise ConfigurationError(f"sinks need different names, not {sink_names}: give name=")
        self.rules = tuple(rules)
        self.sinks = tuple(sinks)
        self.every_s = seconds(every)
        if not 0.1 <= self.every_s < math.inf:
            raise ConfigurationError(f"every must be at least 0.1 seconds, not {every!r}")


class Incident(msgspec.Struct, kw_only=True):
    """An open (or resolving) incident, as kept in Redis.

    Attributes:
        key: ``<rule>:<subject>``, one incident at a time per key.
        dedup_key: the sinks' key for it (PagerDuty's ``dedup_key``), new for each incident.
        rule, subject, severity, summary, details: from its first finding (details: its last).
        opened_at: when it opened; last_seen_at: its last finding; resolved_at: when it
            resolved (None while open), all in seconds since the epoch.
        count: events its findings counted (jobs died, fires missed).
        delivered: per sink, the actions that reached it.
    """

    key: str
    dedup_key: str
    rule: str
    subject: str
    severity: str
    summary: str
    details: dict[str, Any]
    opened_at: float
    last_seen_at: float
    resolved_at: float | None = None
    count: int = 0
    delivered: dict[str, list[str]] = {}

    def wanted(self) -> list[Action]:
        """The actions every sink must get for it: trigger, then resolve once resolved."""
        return ["trigger", "resolve"] if self.resolved_at is not None else ["trigger"]

    def done(self, sinks: Sequence[str]) -> bool:
        """Resolved, and every sink got the resolve: nothing is left to keep."""
        return self.resolved_at is not None and all(
            "resolve" in self.delivered.get(sink, ()) for sink in sinks
        )


def advance_incidents(
    incidents: dict[str, Incident],
    findings: Sequence[Finding],
    quiet_s: dict[str, float],
    now_s: float,
    namespace: str,
) -> set[str]:
    """Open, keep open and resolve `incidents` after one evaluation (pure: no I/O, no clock).

    Args:
        incidents: by key; changed in place.
        findings: what the rules found now.
        quiet_s: per rule, how long without a finding resolves its incidents.
        now_s: now, in seconds since the epoch.
        namespace: the app's namespace (part of each new dedup key).

    Returns:
        the keys of the incidents that changed.
    """
    changed: set[str] = set()
    for f in findings:
        key = f"{f.rule}:{f.subject}"
        open_one = incidents.get(key)
        if open_one is not None and open_one.resolved_at is not None:
            continue  # the last one's resolve is still on its way: a new one opens after it
        if open_one is None:
            incidents[key] = Incident(
                key=key,
                dedup_key=f"errands:{namespace}:{key}:{round(now_s * 1000)}",
                rule=f.rule,
                subject=f.subject,
                severity=f.severity,
                summary=f.summary,
                details=f.details,
                opened_at=now_s,
                last_seen_at=now_s,
                count=f.count,
            )
        else:
            open_one.last_seen_at = now_s
            open_one.count += f.count
            open_one.details = f.details
        changed.add(key)
    for key, incident in incidents.items():
        quiet = quiet_s.get(incident.rule, 0.0)
        quiet_for = now_s - incident.last_seen_at
        if incident.resolved_at is None and quiet_for >= quiet and key not in changed:
            incident.resolved_at = now_s
            changed.add(key)
    return changed


class AlertStore(Protocol):
    """The evaluators' leader lease and the incidents the leader keeps under its fence."""

    async def lead(self, owner: str, lease_ms: int) -> int:
        """Take or renew the lease: `owner`'s fence, or 0 when another evaluator leads."""
        ...

    async def resign(self, owner: str, fence: int) -> bool:
        """Give the lease up if `owner` still holds it under `fence`."""
        ...

    async def save(self, owner: str, fence: int, changes: Sequence[tuple[str, bytes]]) -> bool:
        """Store records (key, JSON; b"" deletes) if `fence` leads; False: nothing stored."""
        ...

    async def read(self) -> dict[str, bytes]:
        """Every incident record, by key."""
        ...


class MemoryAlertStore:
    """`AlertStore` in this process, for apps on the memory broker (one evaluator anyway)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._leader: tuple[str, int, float] | None = None
        self._fence = 0
        self._records: dict[str, bytes] = {}

    async def lead(self, owner: str, lease_ms: int) -> int:
        """See `AlertStore.lead`."""
        with self._lock:
            now = self._clock()
            held = self._leader if self._leader and self._leader[2] > now else None
            if held is not None and held[0] != owner:
                return 0
            if held is None:
                self._fence += 1
            fence = held[1] if held else self._fence
            self._leader = (owner, fence, now + lease_ms / 1000)
            return fence

    async def resign(self, owner: str, fence: int) -> bool:
        """See `AlertStore.resign`."""
        with self._lock:
            if self._leader is not None and self._leader[:2] == (owner, fence):
                self._leader = None
                return True
            return False

    async def save(self, owner: str, fence: int, changes: Sequence[tuple[str, bytes]]) -> bool:
        """See `AlertStore.save`."""
        with self._lock:
            if self._leader is None or self._leader[:2] != (owner, fence):
                return False
            for key, record in changes:
                if record:
                    self._records[key] = record
                else:
                    self._records.pop(key, None)
            return True

    async def read(self) -> dict[str, bytes]:
        """See `AlertStore.read`."""
        with self._lock:
            return dict(self._records)


def alert_store(app: App) -> AlertStore:
    """The store of `app`'s broker: Redis for a Redis broker, this process's memory else."""
    from errands.broker.redis import RedisBroker  # noqa: PLC0415 - only once alerts run

    broker = app.broker
    if isinstance(broker, RedisBroker):
        from errands.broker.redis.alerts import RedisAlertStore  # noqa: PLC0415

        return RedisAlertStore(broker)
    return MemoryAlertStore()


class AlertEvaluator:
    """One evaluator of an app's alerts (``errands alerts APP``).

    Args:
        app: the app, with `App.alerts` declared.
        store: the lease and incidents (`alert_store` by default).
        owner: its name in the lease (host, pid and a random part by default).
        lease_s, renew_s: the lease's length and how often it is renewed.
        clock: the time in seconds since the epoch.
        send: the blocking HTTP sender of the sinks (tests give a fake one).
    """

    def __init__(
        self,
        app: App,
        *,
        store: AlertStore | None = None,
        owner: str | None = None,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
        clock: Callable[[], float] = time.time,
        send: Callable[[Request, float], int] = post,
    ) -> None:
        if app.alert_config is None:
            raise ConfigurationError(
                "this app declares no alerts: call app.alerts(DeadJobs(), sinks=[...]) first"
            )
        if not 0 < renew_s * 2 <= lease_s:
            raise ConfigurationError(f"renew_s ({renew_s}) must be at most half of {lease_s}")
        self.app = app
        self.config = app.alert_config
        self.store = store or alert_store(app)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.source = f"errands@{socket.gethostname()}"
        self.lease_ms = round(lease_s * 1000)
        self.renew_s = renew_s
        self.clock = clock
        self.fence = 0
        self.incidents: dict[str, Incident] = {}
        self._memory = {rule.name: RuleMemory() for rule in self.config.rules}
        self._dirty: set[str] = set()
        self._renew_at = 0.0
        self._failing = False
        #: Evaluations made while leading (a test waits for the first: its baseline).
        self.evaluations = 0
        #: Steps that Redis failed (unreachable, read-only, full).
        self.failed_steps = 0
        self.outboxes = {
            sink.name: Outbox(sink, self._on_delivered, send) for sink in self.config.sinks
        }

    @property
    def leading(self) -> bool:
        """Whether it holds the lease (as of its last step)."""
        return self.fence != 0

    # The loop ----------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Evaluate while leading (stand by otherwise) until `stopping`; resign then."""
        log.info(
            "alert evaluator %s started: %d rules, sinks %s",
            self.owner,
            len(self.config.rules),
            ", ".join(self.outboxes),
        )
        senders = [asyncio.create_task(box.run(stopping)) for box in self.outboxes.values()]
        try:
            while not stopping.is_set():
                for sender in senders:
                    if sender.done():  # a sender never ends before stopping: raise its error
                        sender.result()
                wait_s = await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=wait_s)
        finally:
            await asyncio.gather(*senders, return_exceptions=True)
            if self.fence:
                with contextlib.suppress(BrokerError):
                    await self._save()
                    await self.store.resign(self.owner, self.fence)
            log.info("alert evaluator %s stopped", self.owner)

    async def step(self) -> float:
        """Renew the lease when due and, if leading, evaluate once; the seconds to the next.

        Redis failing (unreachable, read-only, full) is logged once until it answers again;
        the step changes nothing then, so no incident opens or resolves on a reading not made.
        """
        try:
            now = self.clock()
            if now >= self._renew_at:
                await self._lead()
                self._renew_at = now + self.renew_s
            if self.fence:
                await self._evaluate()
        except BrokerError as error:
            self.failed_steps += 1
            if not self._failing:
                log.warning("alert evaluation failed (%s); trying again every few seconds", error)
            self._failing = True
            return min(self.config.every_s, self.renew_s)
        if self._failing:
            log.info("alert evaluation works again")
            self._failing = False
        return min(self.config.every_s, max(0.0, self._renew_at - self.clock()))

    async def _lead(self) -> None:
        fence = await self.store.lead(self.owner, self.lease_ms)
        if fence and fence != self.fence:
            # Leading only once the incidents are read: a read that fails leaves it standing by
            # (the next step tries again), never leading with incidents it does not know.
            await self._take_over()
            log.info("alert evaluator %s leads (fence %d)", self.owner, fence)
        elif not fence and self.fence:
            log.warning("alert evaluator %s lost the lead to another evaluator", self.owner)
            self._stand_down()
        self.fence = fence

    async def _take_over(self) -> None:
        """A new leadership: read the incidents, queue what the sinks have not got."""
        self.incidents = {}
        for key, raw in (await self.store.read()).items():
            try:
                self.incidents[key] = msgspec.json.decode(raw, type=Incident)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                log.error("incident %s cannot be read and is dropped: %s", key, error)
                self._dirty.add(key)
        self._memory = {rule.name: RuleMemory() for rule in self.config.rules}
        for incident in self.incidents.values():
            self._queue(incident)

    def _stand_down(self) -> None:
        self.fence = 0
        self.incidents = {}
        self._dirty.clear()
        for box in self.outboxes.values():
            box.clear()

    # Evaluating ----------------------------------------------------------------------------

    async def _evaluate(self) -> None:
        reading = await self.read()
        findings: list[Finding] = []
        for rule in self.config.rules:
            findings += rule.evaluate(reading, self._memory[rule.name])
        self.evaluations += 1
        log.debug(
            "alert evaluation %d: %d queues, %d findings",
            self.evaluations,
            len(reading.queues),
            len(findings),
        )
        quiet = {rule.name: rule.quiet_s for rule in self.config.rules}
        changed = advance_incidents(
            self.incidents, findings, quiet, reading.at_s, self.app.namespace
        )
        for key in changed:
            incident = self.incidents[key]
            if incident.resolved_at is None and incident.opened_at == reading.at_s:
                log.warning("alert %s opened: %s", key, incident.summary)
            elif incident.resolved_at == reading.at_s:
                log.info("alert %s resolved (it counted %d)", key, incident.count)
        self._dirty |= changed
        if not await self._save():
            return
        for key in changed:
            self._queue(self.incidents[key])

    async def _save(self) -> bool:
        """Write the changed incidents under the fence; False (and stand down) if it lost it."""
        sinks = list(self.outboxes)
        changes: list[tuple[str, bytes]] = []
        for key in sorted(self._dirty):
            incident = self.incidents.get(key)
            if incident is None or incident.done(sinks):
                changes.append((key, b""))
            else:
                changes.append((key, msgspec.json.encode(incident)))
        if not changes:
            return True
        if not await self.store.save(self.owner, self.fence, changes):
            log.warning("alert evaluator %s lost the lead while saving incidents", self.owner)
            self._stand_down()
            return False
        self._dirty.clear()
        for key, record in changes:
            if not record:
                self.incidents.pop(key, None)
        return True

    def _queue(self, incident: Incident) -> None:
        for name, box in self.outboxes.items():
            got = incident.delivered.get(name, [])
            for action in incident.wanted():
                if action not in got:
                    box.add(incident.key, action, box.sink.request(action, incident, self.source))

    def _on_delivered(self, sink: str, key: str, action: Action) -> None:
        incident = self.incidents.get(key)
        if incident is None:
            return
        got = incident.delivered.setdefault(sink, [])
        if action not in got:
            got.append(action)
        self._dirty.add(key)

    async def read(self) -> Reading:
        """The queues (bounded pages) and, when a rule needs them, the schedules' counts."""
        inspector = self.app.broker.inspector
        queues: dict[str, QueueReading] = {}
        after: str | None = None
        while len(queues) < MAX_QUEUES:
            page = await inspector.aqueues(after=after, limit=100)
            for q in page.items:
                queues[q.name] = QueueReading(
                    q.name,
                    q.ready,
                    q.paused,
                    q.oldest_ready_age_s,
                    q.consumers,
                    q.stats.get("failed", 0),
                )
            if page.cursor is None or not page.items:
                break
            after = page.cursor
        schedules: dict[str, ScheduleReading] = {}
        if any(isinstance(rule, MissedFires) for rule in self.config.rules):
            schedules = await self._schedules()
        return Reading(self.clock(), queues, schedules)

    async def _schedules(self) -> dict[str, ScheduleReading]:
        from errands.schedule.records import decode_state  # noqa: PLC0415 - with MissedFires

        snapshot = await self.app.broker.schedules.aread()
        found = {}
        for schedule_id, raw in snapshot.state.items():
            st = decode_state(raw, 0)
            found[schedule_id] = ScheduleReading(schedule_id, st.missed, st.skipped)
        return found


async def run_alongside(app: App, stopping: asyncio.Event) -> None:
    """Evaluate `app`'s alerts until `stopping` if it declares any (``errands beat``)."""
    if app.alert_config is not None:
        await AlertEvaluator(app).run(stopping)
