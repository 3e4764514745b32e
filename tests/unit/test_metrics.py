"""The metrics' pure parts: what the worker's recorder counts, the exporter's families."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from errands.broker.types import AckCode, Outcome, OutcomeKind
from errands.broker.views import QueueSummary
from errands.middleware import Outgoing
from errands.observe.exporter import Reading, queue_families
from errands.observe.metrics import RUN_BUCKETS_S, Metrics, WorkerMetrics
from errands.worker.pool import Assigned
from errands.worker.protocol import Finished, Job

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _recorder() -> tuple[WorkerMetrics, CollectorRegistry]:
    recorder = WorkerMetrics("host:1:abc", lambda: 3, lambda: 7)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(recorder)
    return recorder, registry


def _assigned(job_id: str, task: str) -> Assigned:
    return Assigned(Job(job_id, b"", 1), task, 60.0, is_async=False)


def _outcome(job_id: str, kind: OutcomeKind) -> Outcome:
    return Outcome(job_id, "1", kind, b"")


def test_a_job_is_counted_once_per_outcome_under_its_task_and_queue() -> None:
    recorder, registry = _recorder()
    recorder.started("q", [_assigned("a", "add"), _assigned("b", "add"), _assigned("c", "boom")])
    recorder.finished(
        [
            Finished("a", "succeeded", b"", run_s=0.002, wait_s=0.5),
            Finished("b", "succeeded", b"", run_s=0.2, wait_s=-1.0),
            Finished("c", "retrying", b"", run_s=-1.0, wait_s=-1.0),  # a lost child: untimed
        ]
    )
    recorder.acked([_outcome("c", "retrying")], [AckCode.RETRYING])
    got = _samples(registry)
    add, boom = (
        frozenset({("task", "add"), ("queue", "q")}),
        frozenset({("task", "boom"), ("queue", "q")}),
    )
    assert got[("errands_jobs_started_total", add)] == 2
    assert got[("errands_jobs_succeeded_total", add)] == 2
    assert got[("errands_jobs_failed_total", boom)] == 1
    assert got[("errands_jobs_retried_total", boom)] == 1
    assert got[("errands_job_run_seconds_count", add)] == 2
    assert got[("errands_job_run_seconds_sum", add)] == 0.202
    assert got[("errands_job_run_seconds_bucket", add | {("le", "0.0025")})] == 1
    assert got[("errands_job_run_seconds_bucket", add | {("le", "0.25")})] == 2
    assert got[("errands_job_run_seconds_count", boom)] == 0
    assert got[("errands_job_wait_seconds_count", add)] == 1
    assert got[("errands_worker_jobs_in_flight", frozenset({("worker", "host:1:abc")}))] == 3
    assert got[("errands_lease_renewals_total", frozenset())] == 7


def test_a_death_counts_under_the_task_that_ran_or_no_task_for_a_reaped_job() -> None:
    recorder, registry = _recorder()
    recorder.started("q", [_assigned("a", "boom")])
    recorder.died("q", [("a", b"")])  # a child's own ack: the death comes before the outcome
    recorder.finished([Finished("a", "failed", b"", acked=True)])
    recorder.died("q", [("stalled-elsewhere", b"")])
    got = _samples(registry)
    assert got[("errands_jobs_dead_total", frozenset({("task", "boom"), ("queue", "q")}))] == 1
    assert got[("errands_jobs_failed_total", frozenset({("task", "boom"), ("queue", "q")}))] == 1
    assert got[("errands_jobs_dead_total", frozenset({("task", ""), ("queue", "q")}))] == 1


def test_a_job_given_back_is_released_and_its_late_outcome_is_not_counted() -> None:
    recorder, registry = _recorder()
    recorder.started("q", [_assigned("a", "add")])
    recorder.gave_back(["a"])
    recorder.finished([Finished("a", "succeeded", b"", run_s=0.1)])
    got = _samples(registry)
    labels = frozenset({("task", "add"), ("queue", "q")})
    assert got[("errands_jobs_released_total", labels)] == 1
    assert got[("errands_jobs_succeeded_total", labels)] == 0


def test_a_retry_refused_by_redis_is_not_counted_as_retried() -> None:
    recorder, registry = _recorder()
    recorder.started("q", [_assigned("a", "x"), _assigned("b", "x")])
    recorder.finished([Finished("a", "retrying", b""), Finished("b", "limited", b"")])
    recorder.acked([_outcome("a", "retrying")], [AckCode.DEAD])
    recorder.acked([_outcome("b", "limited")], [AckCode.RETRYING])  # no attempt spent
    got = _samples(registry)
    assert got[("errands_jobs_retried_total", frozenset({("task", "x"), ("queue", "q")}))] == 0


def test_every_bucket_bound_is_exposed_with_inf_last() -> None:
    recorder, registry = _recorder()
    recorder.started("q", [_assigned("a", "t")])
    recorder.finished([Finished("a", "succeeded", b"", run_s=10_000.0)])
    got = _samples(registry)
    bounds = sorted(
        dict(labels)["le"]
        for name, labels in got
        if name == "errands_job_run_seconds_bucket" and dict(labels)["task"] == "t"
    )
    assert len(bounds) == len(RUN_BUCKETS_S) + 1
    base = {("task", "t"), ("queue", "q")}
    assert got[("errands_job_run_seconds_bucket", frozenset({*base, ("le", "+Inf")}))] == 1
    assert got[("errands_job_run_seconds_bucket", frozenset({*base, ("le", "3600.0")}))] == 0


def test_the_middleware_counts_new_jobs_not_duplicates() -> None:
    registry = CollectorRegistry()
    middleware, again = Metrics(registry), Metrics(registry)  # two apps share the counter
    job = Outgoing("id", "add", "default", [1, 2], {})
    middleware.after_enqueue(job, created=True)
    again.after_enqueue(job, created=True)
    middleware.after_enqueue(job, created=False)
    labels = frozenset({("task", "add"), ("queue", "default")})
    assert _samples(registry)[("errands_jobs_enqueued_total", labels)] == 2


def test_the_exporter_shows_each_queue_by_state_and_the_missed_fires() -> None:
    queue = QueueSummary(
        name="emails",
        ready=4,
        delayed=2,
        active=1,
        dead=9,
        paused=True,
        oldest_ready_age_s=None,
        consumers=2,
        stats={"enqueued": 20, "limited": 5},
    )
    registry = CollectorRegistry(auto_describe=False)

    class Fixed:
        def collect(self):  # type: ignore[no-untyped-def]
            return queue_families(Reading([queue], {"nightly": 3}))

    registry.register(Fixed())
    got = _samples(registry)
    q = ("queue", "emails")
    assert got[("errands_queue_jobs", frozenset({q, ("state", "dead")}))] == 9
    assert got[("errands_queue_jobs", frozenset({q, ("state", "ready")}))] == 4
    assert got[("errands_queue_oldest_ready_age_seconds", frozenset({q}))] == 0
    assert got[("errands_queue_paused", frozenset({q}))] == 1
    assert got[("errands_limiter_denials_total", frozenset({q}))] == 5
    assert got[("errands_queue_events_total", frozenset({q, ("event", "enqueued")}))] == 20
    assert got[("errands_schedule_missed_fires_total", frozenset({("schedule", "nightly")}))] == 3
