"""Metrics end to end: a real worker serves /metrics, a real exporter reads Redis.

The worker runs succeeding, retrying and dying jobs (a task that raises, a child that dies, a
hard time limit); its /metrics, fetched over HTTP and parsed with prometheus_client's own text
parser, must count exactly what the test enqueued and what ran. The exporter must report the
queue gauges of jobs the test put in known states.
"""

from __future__ import annotations

import asyncio
import functools
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from errands import App, JobFailed, chain
from errands.broker.types import AckCode, Outcome
from errands.observe.metrics import Metrics
from tests.integration import metrics_app
from tests.integration.worker_app import Tasks
from tests.integration.workers import Workers, free_port, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a /metrics text, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    """GET /metrics over HTTP and parse it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return parse(reply.read().decode())


def total(samples: Samples, name: str) -> float:
    """The sum of every sample named `name`, whatever its labels."""
    return sum(v for (sample, _), v in samples.items() if sample == name)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a series nobody counted yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metered(redis_url: str, namespace: str) -> Iterator[tuple[Tasks, CollectorRegistry]]:
    """The test tasks on an app whose enqueues `Metrics` counts, into a registry of its own."""
    registry = CollectorRegistry()
    built = Tasks(App(redis_url, namespace=namespace, lease=2.0, middleware=[Metrics(registry)]))
    yield built, registry
    built.app.close()


def test_worker_metrics_count_exactly_what_was_enqueued_and_ran(
    metered: tuple[Tasks, CollectorRegistry], workers: Workers
) -> None:
    tasks, registry = metered
    port = free_port()
    workers.start("-c", "2", "--metrics-port", str(port))
    succeeding = [tasks.add.delay(i, 1) for i in range(20)]
    failing = [tasks.always_fails.delay() for _ in range(2)]  # 4 runs each, then dead
    survivor = tasks.die.delay(1)  # its child dies; the retry succeeds
    hung = tasks.hang.delay()  # killed at its hard limit, no retry: dead

    assert [r.get(timeout=15) for r in succeeding] == [i + 1 for i in range(20)]
    assert survivor.get(timeout=15) == 2
    for result in [*failing, hung]:
        with pytest.raises(JobFailed):
            result.get(timeout=20)

    wait_until(
        lambda: total(scrape(port), "errands_jobs_dead_total") == 3, 10, "three deaths counted"
    )
    got = scrape(port)
    q = "default"
    expected = {
        # task: runs, succeeded, failed, retried, dead, runs timed, first runs' waits
        "add": (20, 20, 0, 0, 0, 20, 20),
        "always_fails": (8, 0, 8, 6, 2, 8, 2),
        "die": (2, 1, 1, 1, 0, 1, 0),  # the lost child's run is settled by the supervisor
        "hang": (1, 0, 1, 0, 1, 0, 0),  # ... and so is the killed one: neither is timed
    }
    for task, (started, ok, failed, retried, dead, runs, waits) in expected.items():
        # A job queued in a child that dies is given back (released) and started again.
        counted = tuple(
            value(got, f"errands_jobs_{name}_total", task=task, queue=q)
            for name in ("started", "succeeded", "failed", "retried", "dead")
        )
        begun = counted[0] - value(got, "errands_jobs_released_total", task=task, queue=q)
        assert (begun, *counted[1:]) == (started, ok, failed, retried, dead), task
        assert value(got, "errands_job_run_seconds_count", task=task, queue=q) == runs, task
        assert value(got, "errands_job_run_seconds_bucket", task=task, queue=q, le="+Inf") == runs
        assert value(got, "errands_job_wait_seconds_count", task=task, queue=q) == waits, task
    # An add takes well under a second: every run lands in the le=1.0 bucket.
    assert value(got, "errands_job_run_seconds_bucket", task="add", queue=q, le="1.0") == 20
    assert value(got, "errands_job_wait_seconds_bucket", task="add", queue=q, le="+Inf") == 20
    assert total(got, "errands_worker_jobs_in_flight") == 0

    enqueued = parse(generate_latest(registry).decode())
    for task, count in (("add", 20), ("always_fails", 2), ("die", 1), ("hang", 1)):
        assert value(enqueued, "errands_jobs_enqueued_total", task=task, queue=q) == count


def test_a_second_worker_on_a_taken_metrics_port_exits_1_and_says_why(
    workers: Workers,
) -> None:
    port = free_port()
    first = workers.start("-c", "1", "--metrics-port", str(port))
    second = workers.spawn("-c", "1", "--metrics-port", str(port))
    assert second.wait(30) == 1
    assert f"error: cannot serve metrics on port {port}" in second.log()
    assert first.running()


def test_leases_renewed_and_jobs_in_flight_show_while_a_job_runs(
    metered: tuple[Tasks, CollectorRegistry], workers: Workers
) -> None:
    tasks, _ = metered
    port = free_port()
    workers.start("-c", "1", "--metrics-port", str(port))  # a 2 s lease: renewed every 0.67 s
    result = tasks.slow.delay(2.5)

    def renewed() -> bool:
        samples = scrape(port)
        in_flight = total(samples, "errands_worker_jobs_in_flight")
        return in_flight == 1 and value(samples, "errands_lease_renewals_total") >= 2

    wait_until(renewed, 10, "a running job and its renewed lease")
    assert result.get(timeout=10) == 2.5
    wait_until(lambda: total(scrape(port), "errands_worker_jobs_in_flight") == 0, 5, "nothing held")


def test_the_exporter_reports_the_gauges_of_jobs_in_known_states(
    metered: tuple[Tasks, CollectorRegistry], workers: Workers
) -> None:
    tasks, _ = metered
    broker = tasks.app.broker
    for i in range(5):
        tasks.add.delay(i, i)  # five ready: two are leased, one of them then dies
    tasks.add.apply_async(args=(1, 1), countdown=600)  # one delayed
    tasks.add.apply_async(args=(1, 1), queue="other")  # another queue, one ready

    async def lease_two_kill_one() -> list[AckCode]:
        try:
            leased = (await broker.fetch("default", 2, 60_000, "test-worker")).jobs
            dead = Outcome(leased[0].id, leased[0].token, "failed", b'{"state":"failed"}')
            return await broker.ack("default", [dead])
        finally:
            await broker.aclose()

    assert asyncio.run(lease_two_kill_one()) == [AckCode.DEAD]
    port = free_port()
    workers.spawn("--port", str(port), command="exporter").wait_for_log("serving")

    got = scrape(port)
    assert value(got, "errands_exporter_up") == 1
    for state, count in (("ready", 3), ("delayed", 1), ("active", 1), ("dead", 1)):
        assert value(got, "errands_queue_jobs", queue="default", state=state) == count, state
    assert value(got, "errands_queue_jobs", queue="other", state="ready") == 1
    assert value(got, "errands_queue_oldest_ready_age_seconds", queue="default") > 0
    assert value(got, "errands_queue_events_total", queue="default", event="enqueued") == 6
    assert value(got, "errands_limiter_denials_total", queue="default") == 0
    assert value(got, "errands_queue_paused", queue="default") == 0


def test_a_worker_counts_the_chain_steps_it_enqueues_when_its_app_has_the_middleware(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    app = metrics_app.build(redis_url, namespace, registry)
    farm = Workers(redis_url, namespace, tmp_path, app_spec="tests.integration.metrics_app:app")
    try:
        port = free_port()
        farm.start("-c", "1", "--metrics-port", str(port))
        step = app.tasks["step"]
        result = chain(step.s(1), step.partial(), step.partial()).delay()
        assert result.get(timeout=15) == 4
        wait_until(
            lambda: (
                value(scrape(port), "errands_jobs_succeeded_total", task="step", queue="default")
                == 3
            ),
            10,
            "three steps run",
        )
        got = scrape(port)
        # The producer sent the first step; the worker enqueued the other two.
        assert value(got, "errands_jobs_enqueued_total", task="step", queue="default") == 2
        produced = parse(generate_latest(registry).decode())
        assert value(produced, "errands_jobs_enqueued_total", task="step", queue="default") == 1
    finally:
        farm.close()
        app.close()


@pytest.mark.parametrize("pool", ["solo", "async"])
def test_an_in_process_pool_is_counted_the_same_way(
    metered: tuple[Tasks, CollectorRegistry], workers: Workers, pool: str
) -> None:
    tasks, _ = metered
    port = free_port()
    workers.start("--pool", pool, "-c", "2", "--metrics-port", str(port))
    assert tasks.add.delay(1, 2).get(timeout=10) == 3
    assert tasks.aadd.delay(2, 2).get(timeout=10) == 4

    def counted(task: str) -> bool:
        samples = scrape(port)
        return value(samples, "errands_jobs_succeeded_total", task=task, queue="default") == 1

    for task in ("add", "aadd"):
        wait_until(functools.partial(counted, task), 5, f"{task} counted")
        got = scrape(port)
        assert value(got, "errands_job_run_seconds_count", task=task, queue="default") == 1
        assert value(got, "errands_job_wait_seconds_count", task=task, queue="default") == 1
