"""Alert rules: what to watch, as pure functions of readings of the broker.

A rule looks at a `Reading` (the queues and schedules at one instant, read by the evaluator
through the inspector) and at what it remembers of earlier readings (`RuleMemory`), and returns
the `Finding`s that hold now: one per subject (a queue, a schedule). The evaluator
(`errands.observe.alerts`) turns findings into incidents: the first finding of a subject opens
one, later ones keep it open, and an incident resolves once its rule found nothing for that
subject for the rule's `quiet_s`. Nothing here does I/O or reads a clock: tests give readings
and times.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from errands.errors import ConfigurationError
from errands.result import seconds

__all__ = [
    "AlertRule",
    "DeadJobs",
    "DeadRate",
    "Finding",
    "MissedFires",
    "NoConsumer",
    "OldestReady",
    "QueueReading",
    "Reading",
    "RuleMemory",
    "ScheduleReading",
    "Severity",
]

#: PagerDuty's severities (the webhook sends the same words).
Severity = Literal["critical", "error", "warning", "info"]
_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True, slots=True)
class QueueReading:
    """One queue as the evaluator read it.

    Attributes:
        name: the queue.
        ready: jobs waiting to run.
        paused: whether an operator paused it (no-consumer and wait rules skip it).
        oldest_ready_age_s: how long its oldest ready job has waited (None: none ready).
        consumers: workers heard from lately that serve it.
        died: jobs that ever ended dead in it (the queue's ``failed`` counter).
    """

    name: str
    ready: int
    paused: bool
    oldest_ready_age_s: float | None
    consumers: int
    died: int


@dataclass(frozen=True, slots=True)
class ScheduleReading:
    """One schedule's fire counts (`errands.schedule.records.FireState`).

    Attributes:
        id: the schedule.
        missed: fires older than its catch-up window when a leader got to them.
        skipped: fires not run (overlapping a running one, or coalesced in a catch-up).
    """

    id: str
    missed: int
    skipped: int


@dataclass(frozen=True, slots=True)
class Reading:
    """The broker at one instant.

    Attributes:
        at_s: when it was read (seconds since the epoch).
        queues: by name.
        schedules: by id (empty when no rule needs them).
    """

    at_s: float
    queues: dict[str, QueueReading]
    schedules: dict[str, ScheduleReading] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's condition holds for one subject now.

    Attributes:
        rule: the rule's name (``dead_jobs``...).
        subject: what it holds for: a queue name or a schedule id.
        summary: one line for a human (PagerDuty's ``payload.summary``).
        severity: how bad.
        details: figures behind it (PagerDuty's ``custom_details``).
        count: events it counts this time (jobs died, fires missed), added up by the incident.
    """

    rule: str
    subject: str
    summary: str
    severity: Severity
    details: dict[str, Any]
    count: int = 0


@dataclass(slots=True)
class RuleMemory:
    """What a rule remembers between readings: per subject, what it needs (its own choice).

    `primed` is set once a first reading was seen: a counter met then is a baseline, while a
    subject that appears later (a queue first used since) starts from zero.
    """

    primed: bool = False
    last: dict[str, Any] = field(default_factory=dict)
    since: dict[str, float] = field(default_factory=dict)
    samples: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)


def _duration(value: float | timedelta, name: str, rule: str) -> float:
    try:
        s = seconds(value)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{rule}: {name} must be seconds or a timedelta") from error
    if not 0 <= s < math.inf:
        raise ConfigurationError(f"{rule}: {name} must be a finite duration >= 0, not {value!r}")
    return s


class AlertRule:
    """The base of every rule: its name, severity, quiet period and the queues it watches.

    Args:
        queues: the queues it watches (None: every queue the inspector lists).
        severity: the severity its incidents get.
        quiet: how long it must find nothing for a subject before that incident resolves.
    """

    #: The rule's name, in incident keys and payloads.
    name = "rule"
    default_severity: Severity = "error"
    default_quiet_s = 60.0

    def __init__(
        self,
        *,
        queues: Sequence[str] | None = None,
        severity: Severity | None = None,
        quiet: float | timedelta | None = None,
    ) -> None:
        if isinstance(queues, str):
            raise ConfigurationError(
                f"{self.name}: queues must be a list of queue names, not the string {queues!r}"
            )
        self.queues = None if queues is None else frozenset(queues)
        chosen = severity or self.default_severity
        if chosen not in _SEVERITIES:
            raise ConfigurationError(
                f"{self.name}: severity must be one of {', '.join(_SEVERITIES)}, not {chosen!r}"
            )
        self.severity: Severity = chosen
        self.quiet_s = _duration(
            self.default_quiet_s if quiet is None else quiet, "quiet", self.name
        )

    def watches(self, queue: str) -> bool:
        """Whether this rule looks at `queue`."""
        return self.queues is None or queue in self.queues

    def evaluate(self, reading: Reading, memory: RuleMemory) -> list[Finding]:
        """The findings that hold in `reading`; `memory` is this rule's, updated here."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(queues={sorted(self.queues or []) or None})"


class DeadJobs(AlertRule):
    """A job of a watched queue went dead: one incident per queue while jobs keep dying.

    The incident resolves once no job of that queue died for `quiet` (5 minutes by default);
    however many jobs die meanwhile, it is one trigger and one resolve.
    """

    name = "dead_jobs"
    default_severity: Severity = "error"
    default_quiet_s = 300.0

    def evaluate(self, reading: Reading, memory: RuleMemory) -> list[Finding]:
        """See `AlertRule.evaluate`: a finding per queue whose dead counter went up."""
        found = []
        for q in reading.queues.values():
            if not self.watches(q.name):
                continue
            before = memory.last.get(q.name, 0 if memory.primed else None)
            memory.last[q.name] = q.died
            # The first reading is a baseline; a counter that went down was reset.
            if before is None or q.died <= before:
                continue
            n = q.died - before
            found.append(
                Finding(
                    self.name,
                    q.name,
                    f"jobs are going dead in queue {q.name}",
                    self.severity,
                    {"queue": q.name, "died_lately": n, "dead_total": q.died},
                    count=n,
                )
            )
        memory.primed = True
        return found


class OldestReady(AlertRule):
    """A queue's oldest ready job has waited longer than `over`.

    Args:
        over: the longest wait that is fine.
    """

    name = "oldest_ready"
    default_severity: Severity = "warning"

    def __init__(self, *, over: float | timedelta, **options: Any) -> None:
        super().__init__(**options)
        self.over_s = _duration(over, "over", self.name)

    def evaluate(self, reading: Reading, memory: RuleMemory) -> list[Finding]:
        """See `AlertRule.evaluate`."""
        return [
            Finding(
                self.name,
                q.name,
                f"the oldest ready job of queue {q.name} has waited "
                f"{q.oldest_ready_age_s:.0f}s (over {self.over_s:g}s)",
                self.severity,
                {"queue": q.name, "oldest_ready_age_s": q.oldest_ready_age_s, "ready": q.ready},
            )
            for q in reading.queues.values()
            if self.watches(q.name)
            and not q.paused
            and q.oldest_ready_age_s is not None
            and q.oldest_ready_age_s > self.over_s
        ]


class NoConsumer(AlertRule):
    """A queue has ready jobs and no live worker serving it, for longer than `over`.

    Args:
        over: how long a queue may have work and nobody to do it.
    """

    name = "no_consumer"
    default_severity: Severity = "critical"

    def __init__(self, *, over: float | timedelta, **options: Any) -> None:
        super().__init__(**options)
        self.over_s = _duration(over, "over", self.name)

    def evaluate(self, reading: Reading, memory: RuleMemory) -> list[Finding]:
        """See `AlertRule.evaluate`; `memory.since` holds when each queue was first seen so."""
        found = []
        for q in reading.queues.values():
            if not self.watches(q.name) or q.paused or q.ready == 0 or q.consumers > 0:
                memory.since.pop(q.name, None)
                continue
            since = memory.since.setdefault(q.name, reading.at_s)
            waited = reading.at_s - since
            if waited > self.over_s:
                found.append(
                    Finding(
                        self.name,
                        q.name,
                        f"queue {q.name} has {q.ready} ready jobs and no worker for {waited:.0f}s",
                        self.severity,
                        {"queue": q.name, "ready": q.ready, "without_consumer_s": waited},
                    )
                )
        for gone in set(memory.since) - set(reading.queues):
            del memory.since[gone]
        return found


class DeadRate(AlertRule):
    """Jobs of a queue go dead faster than `per_minute`, averaged over `window`.

    Args:
        per_minute: the death rate that is still fine (jobs per minute).
        window: how far back the rate looks (5 minutes by default).
    """

    name = "dead_rate"
    default_severity: Severity = "critical"

    def __init__(
        self, *, per_minute: float, window: float | timedelta = 300.0, **options: Any
    ) -> None:
        super().__init__(**options)
        if not 0 < per_minute < math.inf:
            raise ConfigurationError(
                f"{self.name}: per_minute must be a rate above 0, not {per_minute!r}"
            )
        self.per_minute = float(per_minute)
        self.window_s = _duration(window, "window", self.name)
        if self.window_s < 1:
            raise ConfigurationError(f"{self.name}: window must be at least 1 second")

    def evaluate(self, reading: Reading, memory: RuleMemory) -> list[Finding]:
        """See `AlertRule.evaluate`; `memory.samples` holds each queue's counter over time."""
        found = []
        for q in reading.queues.values():
            if not self.watches(q.name):
                continue
            samples = memory.samples.setdefault(q.name, deque())
            if samples and q.died < samples[-1][1]:
                samples.clear()  # the counter was reset
            samples.append((reading.at_s, q.died))
            while len(samples) > 1 and samples[1][0] <= reading.at_s - self.window_s:
                samples.popleft()
            (t0, n0), (t1, n1) = samples[0], samples[-1]
            # The rate over the whole window, however little of it was seen yet, so that a
            # few deaths right after a start are not taken for a torrent.
            rate = (n1 - n0) * 60 / max(self.window_s, t1 - t0)
            if n1 > n0 and rate > self.per_minute:
                found.append(
                    Finding(
                        self.name,
                        q.name,
                        f"jobs of queue {q.name} go dead at {rate:.1f}/min "
                        f"(over {self.per_minute:g}/min)",
                        self.severity,
                        {"queue": q.name, "per_minute": rate, "window_s": self.window_s},
                    )
                )
        return found


class MissedFires(AlertRule):
    """A schedule missed a fire: one older than its catch-up window when a leader got to it.

    Args:
        schedules: the schedule ids it watches (None: every schedule).
        skipped: count skipped fires too (overlapping a running one, coalesced in a catch-up).
    """

    name = "missed_fires"
    default_severity: Severity = "warning"
    default_quiet_s = 300.0

    def __init__(
        self, *, schedules: Sequence[str] | None = None, skipped: bool = False, **options: Any
    ) -> None:
        if "queues" in options:
            raise ConfigurationError(f"{self.name} watches schedules: give schedules=, not queues=")
        super().__init__(**options)
        if isinstance(schedules, str):
            raise ConfigurationError(f"{self.name}: schedules must be a list of schedule ids")
        self.schedules = None if schedules is None else frozenset(schedules)
        self.skipped = skipped

    def evaluate(self, reading: Reading, memory: RuleMemory) -> list[Finding]:
        """See `AlertRule.evaluate`: a finding per schedule whose missed count went up."""
        found = []
        for s in reading.schedules.values():
            if self.schedules is not None and s.id not in self.schedules:
                continue
            now = s.missed + (s.skipped if self.skipped else 0)
            before = memory.last.get(s.id, 0 if memory.primed else None)
            memory.last[s.id] = now
            if before is None or now <= before:
                continue
            n = now - before
            found.append(
                Finding(
                    self.name,
                    s.id,
                    f"schedule {s.id} missed {n} fire{'s' * (n != 1)}",
                    self.severity,
                    {"schedule": s.id, "missed": s.missed, "skipped": s.skipped},
                    count=n,
                )
            )
        memory.primed = True
        return found
