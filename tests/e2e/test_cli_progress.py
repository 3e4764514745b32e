"""``errands status`` shows what a running job reported of its progress, as text and as JSON.

A real worker runs the job (`tests.integration.worker_app`: steps reports 40 %, "step 2 of 5",
then waits for a gate the test opens).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from errands.cli import main
from tests.integration.worker_app import Tasks, build, gate_key
from tests.integration.workers import Events, Workers, wait_until


@pytest.fixture
def tasks(redis_url: str, namespace: str) -> Iterator[Tasks]:
    built = build(redis_url, namespace)
    yield built
    built.app.close()


def _status(tasks: Tasks, *args: str) -> tuple[int, str]:
    app = tasks.app
    result = CliRunner().invoke(
        main, ["status", *args, "--broker-url", app.broker_url, "--namespace", app.namespace]
    )
    return result.exit_code, result.output


def test_status_shows_a_running_jobs_progress_and_its_json_holds_it(
    tasks: Tasks, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    farm = Workers(redis_url, namespace, tmp_path)
    events = Events(redis_url, namespace)
    gates = redis.Redis.from_url(redis_url)
    try:
        farm.start("-c", "1")
        handle = tasks.steps.delay("shown")
        events.wait_for(1, event="reported", job=handle.id)
        wait_until(
            lambda: (p := handle.progress) is not None and p.fraction == 0.4,
            10,
            "the job's second report to reach Redis",
        )
        code, out = _status(tasks, handle.id)
        assert code == 0, out
        assert f"job {handle.id} in queue default: active" in out
        assert "progress: 40% step 2 of 5 (reported " in out
        assert "task: steps" in out
        assert "arguments: ('shown')" in out
        assert "worker: " in out
        assert "started: 20" in out
        assert ", waited " in out
        assert "running: for " in out
        assert "progress data:" in out
        assert '"rows": 1200' in out
        assert '"stage": "copy"' in out

        code, out = _status(tasks, handle.id, "--json")
        assert code == 0, out
        document = json.loads(out)
        assert document["worker"]
        assert document["started_at"].endswith("Z")
        assert document["wait_s"] >= 0
        assert document["run_s"] > 0, "it has run since it started"
        progress = document["progress"]
        assert progress["fraction"] == 0.4
        assert progress["message"] == "step 2 of 5"
        assert progress["data"] == {"rows": 1200, "stage": "copy"}
        assert progress["updated_at"].endswith("Z")  # an aware time, in UTC

        gates.set(gate_key(namespace, "shown"), 1)
        assert handle.get(timeout=15) == "shown"
        code, out = _status(tasks, handle.id)
        assert code == 0, out
        assert "succeeded" in out
        assert "progress" not in out
    finally:
        gates.close()
        events.close()
        farm.close()
