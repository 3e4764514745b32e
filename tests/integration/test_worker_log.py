"""A real worker logs one line per job outcome, in text and in JSON, as an operator reads them.

Each test runs a worker process on jobs that succeed, retry then succeed, fail for good (with
their traceback) and die with their process, and finds each one's line in the worker's log: the
lines the children wrote themselves and those the supervisor wrote for the job it settled.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from errands import JobFailed
from tests.integration.worker_app import Tasks
from tests.integration.workers import WorkerProcess, Workers

pytestmark = pytest.mark.timeout(90)


def _run_the_four(tasks: Tasks) -> dict[str, str]:
    """Send a success, a retry that succeeds, a failure for good and a death; wait for all."""
    ok = tasks.add.delay(1, 2)
    retried = tasks.picky.delay("TimeoutError")  # autoretried once, then returns its attempt
    fails = tasks.always_fails.delay()  # 4 attempts, then dead with its traceback
    dies = tasks.die.delay(2)  # its process exits on both of its attempts
    described = tasks.describe.delay()  # logs through ctx.log
    assert ok.get(timeout=20) == 3
    assert retried.get(timeout=20) == 2
    assert described.get(timeout=20)["task"] == "describe"
    for result in (fails, dies):
        with pytest.raises(JobFailed):
            result.get(timeout=30)
    return {
        "ok": ok.id,
        "retried": retried.id,
        "fails": fails.id,
        "dies": dies.id,
        "described": described.id,
    }


def _entries(worker: WorkerProcess) -> list[dict[str, Any]]:
    """Every line of the log, each parsed as JSON (a line that is not JSON fails the test).

    Read while the worker runs (every job's line is written before its outcome leaves the
    process that ran it, so before the test sees its result); a line still being written
    is left for next time.
    """
    complete, _, _ = worker.log().rpartition("\n")
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def test_the_json_log_has_a_line_for_each_outcome_with_stable_fields(
    workers: Workers, tasks: Tasks
) -> None:
    worker = workers.start("-c", "2", "--log-format", "json")
    ids = _run_the_four(tasks)
    worker.wait_for_log('"task":"die","queue":"default","attempt":2,"outcome":"failed"')
    entries = _entries(worker)
    banner = next(e for e in entries if "serving" in e["message"])
    assert "tasks (" in banner["message"]
    assert "always_fails" in banner["message"]
    jobs = [e for e in entries if e["logger"] == "errands.jobs"]

    def lines(job: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in jobs if e["job_id"] == ids[job] and match.items() <= e.items()]

    (ok,) = lines("ok")
    assert (ok["level"], ok["task"], ok["queue"], ok["attempt"]) == ("info", "add", "default", 1)
    assert ok["outcome"] == "succeeded"
    assert ok["duration_s"] >= 0
    assert ok["worker"] == banner["worker"]
    assert ok["pid"] != banner["pid"]

    retry, success = lines("retried")
    assert (retry["level"], retry["outcome"], retry["error_type"]) == (
        "warning", "retrying", "TimeoutError",
    )  # fmt: skip
    assert retry["retry_in_s"] > 0
    assert "traceback" not in retry
    assert (success["outcome"], success["attempt"]) == ("succeeded", 2)

    *retries, dead = lines("fails")
    assert [e["outcome"] for e in retries] == ["retrying"] * 3
    assert (dead["level"], dead["outcome"], dead["attempt"]) == ("error", "failed", 4)
    assert (dead["error_type"], dead["error"]) == ("ValueError", "failure on attempt 4")
    assert 'raise ValueError(f"failure on attempt {ctx.attempt}")' in dead["traceback"]

    lost, died = lines("dies")  # settled by the supervisor: its child was gone
    assert (lost["outcome"], died["outcome"], died["level"]) == ("retrying", "failed", "error")
    assert died["task"] == "die"
    assert died["pid"] == banner["pid"]
    assert died["error_type"] == "errands.errors.WorkerLost"

    (task_line,) = [e for e in entries if e["logger"] == "errands.task.describe"]
    assert task_line["message"] == f"describing job {ids['described']}"
    assert (task_line["job_id"], task_line["task"], task_line["queue"], task_line["attempt"]) == (
        ids["described"], "describe", "default", 1,
    )  # fmt: skip


def test_the_console_log_shows_each_outcome_readably_with_the_traceback(
    workers: Workers, tasks: Tasks
) -> None:
    worker = workers.start("-c", "2")
    ids = _run_the_four(tasks)
    worker.wait_for_log(f"job={ids['dies']} queue=default attempt=2]")
    text = worker.log()
    assert "serving default with process pool of 2" in text
    assert "INFO    errands.jobs: add succeeded in " in text
    assert f"[task=add job={ids['ok']} queue=default attempt=1]" in text
    assert "picky failed in " in text
    assert f"[task=picky job={ids['retried']} queue=default attempt=1]" in text
    assert f"[task=picky job={ids['retried']} queue=default attempt=2]" in text
    dead_line = "ERROR   errands.jobs: always_fails failed for good in "
    _head, _, after = text.partition(dead_line)
    assert after, text
    first, *below = after.splitlines()
    assert first.endswith(
        f"on attempt 4: ValueError: failure on attempt 4 "
        f"[task=always_fails job={ids['fails']} queue=default attempt=4]"
    )
    assert below[0] == "Traceback (most recent call last):"
    assert any(
        'raise ValueError(f"failure on attempt {ctx.attempt}")' in line for line in below[:8]
    )
    assert "errands.jobs: die failed for good in " in text
    assert (
        f"errands.errors.WorkerLost: the process running this job died (exit code 1) "
        f"[task=die job={ids['dies']} queue=default attempt=2]" in text
    )
    assert (
        f"errands.task.describe: describing job {ids['described']} "
        f"[task=describe job={ids['described']} queue=default attempt=1]" in text
    )


@pytest.mark.parametrize("pool", ["process", "solo"])
def test_log_jobs_failures_drops_the_success_lines_and_keeps_the_failures(
    workers: Workers, tasks: Tasks, pool: str
) -> None:
    worker = workers.start(
        "-c", "1", "--pool", pool, "--log-format", "json", "--log-jobs", "failures"
    )
    assert [tasks.add.delay(i, 1).get(timeout=20) for i in range(5)] == [1, 2, 3, 4, 5]
    fails = tasks.always_fails.delay()
    with pytest.raises(JobFailed):
        fails.get(timeout=30)
    worker.wait_for_log(
        f'"job_id":"{fails.id}","task":"always_fails","queue":"default","attempt":4'
    )
    jobs = [e for e in _entries(worker) if e["logger"] == "errands.jobs"]
    assert [e["outcome"] for e in jobs] == ["retrying", "retrying", "retrying", "failed"]
    assert "job lines: failures" in worker.log()


def test_log_jobs_none_logs_no_job_line(workers: Workers, tasks: Tasks) -> None:
    worker = workers.start("-c", "1", "--log-jobs", "none")
    assert tasks.add.delay(1, 1).get(timeout=20) == 2
    with pytest.raises(JobFailed):
        tasks.always_fails.delay().get(timeout=30)
    assert "errands.jobs" not in worker.log()
