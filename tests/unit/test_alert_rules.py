"""Alert rules and incidents as pure functions: readings and times given, no Redis, no clock."""

from __future__ import annotations

import json

import pytest

from errands import App, ConfigurationError
from errands.observe.alert_rules import (
    DeadJobs,
    DeadRate,
    MissedFires,
    NoConsumer,
    OldestReady,
    QueueReading,
    Reading,
    RuleMemory,
    ScheduleReading,
)
from errands.observe.alert_sinks import PagerDuty, Webhook
from errands.observe.alerts import Alerts, Incident, advance_incidents
from errands.testing import MemoryBroker


def _q(
    name: str = "default",
    *,
    ready: int = 0,
    died: int = 0,
    consumers: int = 1,
    oldest: float | None = None,
    paused: bool = False,
) -> QueueReading:
    return QueueReading(name, ready, paused, oldest, consumers, died)


def _at(t: float, *queues: QueueReading, schedules: tuple[ScheduleReading, ...] = ()) -> Reading:
    return Reading(t, {q.name: q for q in queues}, {s.id: s for s in schedules})


def test_dead_jobs_finds_a_queue_whose_dead_counter_rose_after_a_baseline() -> None:
    rule, memory = DeadJobs(), RuleMemory()
    assert rule.evaluate(_at(0, _q(died=7)), memory) == []  # a baseline, not an alert
    assert rule.evaluate(_at(5, _q(died=7)), memory) == []
    [found] = rule.evaluate(_at(10, _q(died=10)), memory)
    assert (found.rule, found.subject, found.count) == ("dead_jobs", "default", 3)
    assert found.severity == "error"


def test_dead_jobs_counts_a_queue_that_appears_after_the_first_reading_from_zero() -> None:
    rule, memory = DeadJobs(), RuleMemory()
    rule.evaluate(_at(0, _q("a")), memory)
    [found] = rule.evaluate(_at(5, _q("a"), _q("b", died=2)), memory)
    assert (found.subject, found.count) == ("b", 2)


def test_dead_jobs_watches_only_the_queues_it_names() -> None:
    rule, memory = DeadJobs(queues=["emails"]), RuleMemory()
    rule.evaluate(_at(0, _q("emails"), _q("other")), memory)
    found = rule.evaluate(_at(5, _q("emails", died=1), _q("other", died=9)), memory)
    assert [f.subject for f in found] == ["emails"]


def test_oldest_ready_finds_a_queue_whose_oldest_job_waited_too_long() -> None:
    rule = OldestReady(over=60)
    reading = _at(
        0,
        _q("slow", ready=3, oldest=61.0),
        _q("fine", ready=3, oldest=59.0),
        _q("held", ready=3, oldest=600.0, paused=True),
    )
    assert [f.subject for f in rule.evaluate(reading, RuleMemory())] == ["slow"]


def test_no_consumer_fires_only_after_the_queue_stayed_without_one_for_the_threshold() -> None:
    rule, memory = NoConsumer(over=30), RuleMemory()
    assert rule.evaluate(_at(100, _q(ready=5, consumers=0)), memory) == []
    assert rule.evaluate(_at(129, _q(ready=5, consumers=0)), memory) == []
    [found] = rule.evaluate(_at(131, _q(ready=5, consumers=0)), memory)
    assert found.details["without_consumer_s"] == 31
    # A worker comes back: the clock starts again.
    assert rule.evaluate(_at(132, _q(ready=5, consumers=1)), memory) == []
    assert rule.evaluate(_at(150, _q(ready=5, consumers=0)), memory) == []
    # No work is no problem.
    assert rule.evaluate(_at(500, _q(ready=0, consumers=0)), memory) == []


def test_dead_rate_fires_when_deaths_per_minute_over_the_window_pass_the_rate() -> None:
    rule, memory = DeadRate(per_minute=10, window=60), RuleMemory()
    assert rule.evaluate(_at(0, _q(died=0)), memory) == []
    assert rule.evaluate(_at(30, _q(died=8)), memory) == []  # 8 in the window: 8/min
    [found] = rule.evaluate(_at(50, _q(died=12)), memory)  # 12 within a minute
    assert found.details["per_minute"] == pytest.approx(12.0)
    # The old deaths leave the window: 3 over the last minute is fine.
    assert rule.evaluate(_at(110, _q(died=15)), memory) == []


def test_missed_fires_finds_a_schedule_whose_missed_count_rose() -> None:
    rule, memory = MissedFires(), RuleMemory()
    rule.evaluate(_at(0, schedules=(ScheduleReading("nightly", 1, 0),)), memory)
    assert rule.evaluate(_at(5, schedules=(ScheduleReading("nightly", 1, 4),)), memory) == []
    [found] = rule.evaluate(_at(10, schedules=(ScheduleReading("nightly", 2, 4),)), memory)
    assert (found.subject, found.count) == ("nightly", 1)
    with_skips, memory = MissedFires(skipped=True), RuleMemory()
    with_skips.evaluate(_at(0, schedules=(ScheduleReading("s", 0, 0),)), memory)
    assert with_skips.evaluate(_at(5, schedules=(ScheduleReading("s", 0, 2),)), memory)


def test_jobs_that_keep_dying_keep_one_incident_open_until_a_quiet_period_passes() -> None:
    rule, memory = DeadJobs(quiet=10), RuleMemory()
    incidents: dict[str, Incident] = {}
    quiet = {"dead_jobs": 10.0}
    for t, died in [(0, 0), (1, 30), (2, 70), (5, 100)]:
        advance_incidents(incidents, rule.evaluate(_at(t, _q(died=died)), memory), quiet, t, "ns")
    [incident] = incidents.values()
    assert (incident.count, incident.opened_at, incident.resolved_at) == (100, 1, None)
    assert incident.dedup_key == "errands:ns:dead_jobs:default:1000"
    changed = advance_incidents(incidents, [], quiet, 14.9, "ns")
    assert changed == set()
    assert incident.resolved_at is None
    assert advance_incidents(incidents, [], quiet, 15, "ns") == {"dead_jobs:default"}
    assert incident.resolved_at == 15
    assert incident.wanted() == ["trigger", "resolve"]


def test_a_resolved_incident_is_kept_until_every_sink_got_its_resolve() -> None:
    incident = Incident(
        key="k", dedup_key="d", rule="r", subject="s", severity="error", summary="x",
        details={}, opened_at=0, last_seen_at=0, resolved_at=5,
        delivered={"pagerduty": ["trigger", "resolve"], "webhook": ["trigger"]},
    )  # fmt: skip
    assert not incident.done(["pagerduty", "webhook"])
    incident.delivered["webhook"].append("resolve")
    assert incident.done(["pagerduty", "webhook"])


def _incident() -> Incident:
    return Incident(
        key="dead_jobs:emails", dedup_key="errands:ns:dead_jobs:emails:1000", rule="dead_jobs",
        subject="emails", severity="error", summary="jobs are going dead in queue emails",
        details={"queue": "emails"}, opened_at=1.0, last_seen_at=3.0, count=100,
    )  # fmt: skip


def test_the_pagerduty_trigger_and_resolve_carry_one_dedup_key_and_the_v2_fields() -> None:
    sink = PagerDuty("key123", url="http://127.0.0.1:9/e")
    trigger = json.loads(sink.request("trigger", _incident(), "errands@host").body)
    assert trigger == {
        "routing_key": "key123",
        "event_action": "trigger",
        "dedup_key": "errands:ns:dead_jobs:emails:1000",
        "payload": {
            "summary": "jobs are going dead in queue emails",
            "source": "errands@host",
            "severity": "error",
            "timestamp": "1970-01-01T00:00:01+00:00",
            "component": "emails",
            "group": "dead_jobs",
            "class": "dead_jobs",
            "custom_details": {"queue": "emails", "count": 100},
        },
    }
    resolve = json.loads(sink.request("resolve", _incident(), "errands@host").body)
    assert resolve == {
        "routing_key": "key123",
        "event_action": "resolve",
        "dedup_key": "errands:ns:dead_jobs:emails:1000",
    }


def test_the_webhook_body_is_the_documented_document() -> None:
    request = Webhook("https://hooks.example/x", headers={"Authorization": "Bearer t"}).request(
        "trigger", _incident(), "errands@host"
    )
    assert request.headers["Authorization"] == "Bearer t"
    body = json.loads(request.body)
    assert set(body) == {
        *("event", "dedup_key", "rule", "subject", "severity", "summary", "source"),
        *("opened_at", "resolved_at", "count", "details"),
    }
    assert (body["event"], body["resolved_at"], body["count"]) == ("trigger", None, 100)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Alerts([], [Webhook("http://x/")]), "at least one rule"),
        (lambda: Alerts([DeadJobs()], []), "need a sink"),
        (lambda: Alerts(["dead"], [Webhook("http://x/")]), "is not an alert rule"),  # type: ignore[list-item]
        (lambda: Alerts([DeadJobs(), DeadJobs()], [Webhook("http://x/")]), "given once"),
        (
            lambda: Alerts([DeadJobs()], [Webhook("http://x/"), Webhook("http://y/")]),
            "different names",
        ),
        (lambda: Webhook("ftp://x/"), "http:// or https://"),
        (lambda: PagerDuty(""), "routing_key"),
        (lambda: DeadJobs(queues="emails"), "list of queue names"),
        (lambda: DeadJobs(severity="loud"), "severity must be one of"),  # type: ignore[arg-type]
        (lambda: OldestReady(over=-1), "finite duration"),
        (lambda: DeadRate(per_minute=0), "rate above 0"),
        (lambda: MissedFires(queues=["x"]), "give schedules="),
        (lambda: Alerts([DeadJobs()], [Webhook("http://x/")], every=0), "at least 0.1"),
    ],
)
def test_alert_settings_that_cannot_work_are_refused_with_what_to_do(
    make: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()  # type: ignore[operator]


def test_alerts_are_declared_on_the_app() -> None:
    app = App(broker=MemoryBroker())
    assert app.alert_config is None
    declared = app.alerts(DeadJobs(), sinks=[Webhook("http://127.0.0.1:9/")], every=2)
    assert app.alert_config is declared
    assert declared.every_s == 2


def test_the_memory_broker_refuses_an_event_stream() -> None:
    with pytest.raises(ConfigurationError, match="keeps no event stream"):
        App(broker=MemoryBroker(), events_maxlen=100)
    with pytest.raises(ConfigurationError, match="events_maxlen must be"):
        App(events_maxlen=-1)
