"""`errands workers` and `errands cancel` against real worker processes.

A worker that stops cleanly leaves `errands workers` at once; one that is SIGKILLed leaves it
once its lease has passed, and stops counting in `errands queues`; a running job cancelled from
the CLI is stopped by its worker.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner

from errands.cli import main
from tests.integration.worker_app import Tasks
from tests.integration.workers import Events, Workers, stop_cleanly, wait_until

LEASE_S = 2.0


def _cli(redis_url: str, namespace: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--broker-url", redis_url, "--namespace", namespace])
    return result.exit_code, result.output


def _listed(redis_url: str, namespace: str) -> list[dict[str, object]]:
    code, out = _cli(redis_url, namespace, "workers", "--json")
    assert code == 0, out
    document = json.loads(out)
    assert document["namespace"] == namespace
    listed: list[dict[str, object]] = document["workers"]
    return listed


def _consumers(redis_url: str, namespace: str) -> str:
    code, out = _cli(redis_url, namespace, "queues")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "│ default" in line)
    return [cell.strip() for cell in row.split("│")][-2]


@pytest.mark.timeout(60)
def test_a_worker_is_listed_while_it_runs_and_leaves_at_once_when_it_stops(
    redis_url: str, namespace: str, workers: Workers
) -> None:
    worker = workers.start("-c", "2", "--pool", "process", "--lease", str(LEASE_S))
    [listed] = _listed(redis_url, namespace)
    assert listed["pid"] == worker.pid
    assert listed["queues"] == ["default"]
    assert (listed["pool"], listed["concurrency"], listed["held"]) == ("process", 2, 0)
    assert listed["lease_s"] == LEASE_S
    assert isinstance(listed["seen_at"], str)
    assert listed["seen_at"].endswith("Z")
    assert isinstance(listed["started_at"], str)
    code, table = _cli(redis_url, namespace, "workers")
    assert code == 0
    assert str(listed["id"]) in table, "the table never cuts a worker id"
    assert _consumers(redis_url, namespace) == "1"
    time.sleep(LEASE_S * 1.5)  # the time passing is the point: an idle worker beats on
    assert [w["pid"] for w in _listed(redis_url, namespace)] == [worker.pid]

    stop_cleanly(worker)
    assert _listed(redis_url, namespace) == [], "a worker that stopped is gone at once"
    assert _consumers(redis_url, namespace) == "0"


@pytest.mark.timeout(60)
def test_a_killed_worker_leaves_the_list_once_its_lease_has_passed(
    redis_url: str, namespace: str, workers: Workers
) -> None:
    worker = workers.start("-c", "1", "--lease", str(LEASE_S))
    [listed] = _listed(redis_url, namespace)
    seen = time.time()
    worker.kill_all()
    assert [w["pid"] for w in _listed(redis_url, namespace)] == [worker.pid], (
        "within its lease a worker that died cannot be told from one between two beats"
    )
    wait_until(lambda: _listed(redis_url, namespace) == [], LEASE_S + 3, "the dead worker to go")
    # It beats every lease/3 (from its first, as soon as it serves): the last beat was
    # shortly before `seen`, and it is listed for a lease after it.
    assert time.time() - seen >= LEASE_S / 2
    assert _consumers(redis_url, namespace) == "0"
    assert listed["pid"] == worker.pid
    # Its record goes too, with nobody left to run maintenance: the list expires 3 leases
    # after the last beat.
    client = redis.Redis.from_url(redis_url)
    try:
        ttl_ms = client.pttl(f"{namespace}:{{default}}:workers")
    finally:
        client.close()
    assert 0 < ttl_ms <= 3 * LEASE_S * 1000 or ttl_ms == -2, ttl_ms


@pytest.mark.timeout(60)
def test_cancel_from_the_cli_stops_a_running_job(
    redis_url: str, namespace: str, workers: Workers, tasks: Tasks, events: Events
) -> None:
    worker = workers.start("-c", "1", "--lease", str(LEASE_S))
    job = tasks.until_cancelled.delay()
    events.wait_for(1, event="started", job=job.id)
    code, out = _cli(redis_url, namespace, "cancel", job.id)
    assert code == 0, out
    assert "asked to stop" in out
    events.wait_for(1, event="saw_cancel", job=job.id)
    wait_until(lambda: job.state in ("cancelled", "succeeded"), 15, "the job to end")
    code, out = _cli(redis_url, namespace, "cancel", job.id)
    assert code == 1
    assert "already finished" in out
    stop_cleanly(worker)
