"""The inspection commands and error messages of the `errands` CLI, on real Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from errands import App
from errands.cli import main
from errands.testing import run_jobs


def _invoke(app: App, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    result = runner.invoke(
        main, [*args, "--broker-url", app.broker_url, "--namespace", app.namespace]
    )
    return result.exit_code, result.output


def _kill(app: App, queue: str = "default", jobs: int = 1) -> list[str]:
    @app.task(max_retries=0, name=f"broken-{queue}", queue=queue)
    def broken() -> None:
        raise ValueError("no customer on invoice 7")

    sent = [broken.delay() for _ in range(jobs)]
    run_jobs(app, [queue])
    return [job.id for job in sent]


def test_status_shows_a_queued_job(app: App) -> None:
    @app.task
    def noop() -> None: ...

    job = noop.delay()
    code, out = _invoke(app, "status", job.id)
    assert code == 0
    assert "queued" in out
    assert "default" in out


def test_status_of_an_unknown_job_says_so_and_exits_1(app: App) -> None:
    app.inspector.queues()
    code, out = _invoke(app, "status", "nope")
    assert code == 1
    assert "no job nope" in out


def test_queues_lists_counts_per_queue(app: App) -> None:
    @app.task(queue="mail")
    def send() -> None: ...

    send.delay()
    send.apply_async(countdown=60)
    code, out = _invoke(app, "queues")
    assert code == 0
    row = next(line for line in out.splitlines() if "mail" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[1:4] == ["mail", "1", "1"]


def test_dead_list_shows_the_error_and_retry_moves_it_back(app: App) -> None:
    [job_id] = _kill(app)
    code, out = _invoke(app, "dead", "list")
    assert code == 0
    assert job_id in out
    assert "ValueError" in out
    code, out = _invoke(app, "dead", "retry", job_id)
    assert code == 0
    assert "1 job(s) back in queue default" in out
    assert app.inspector.queue("default").ready == 1


def test_dead_purge_deletes_dead_jobs_with_yes(app: App) -> None:
    _kill(app)
    code, out = _invoke(app, "dead", "purge", "--yes")
    assert code == 0
    assert "1 dead job(s) deleted" in out
    assert app.inspector.queue("default").dead == 0


@pytest.mark.parametrize(
    "command", [["queues"], ["status", "j1"], ["dead", "list"], ["dead", "retry"]]
)
def test_an_unreachable_redis_is_one_clear_line_not_a_traceback(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "errands", *command, "--broker-url", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert "Traceback" not in result.stderr


def test_a_worker_for_a_missing_module_says_what_to_do() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "errands", "worker", "no_such_module:app"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot import 'no_such_module'" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_jobs_helper_works_against_redis_too(app: App) -> None:
    @app.task
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    job = double.delay(4)
    assert run_jobs(app, ["default"]) == 1
    assert job.get(timeout=1) == 8


def test_status_tells_a_dead_jobs_story_arguments_attempts_and_errors(app: App) -> None:
    @app.task(name="billing.charge", max_retries=1, retry_backoff=0, autoretry_for=(KeyError,))
    def charge(invoice: int) -> None:
        raise KeyError(f"sku of invoice {invoice}")

    job = charge.delay(7)
    run_jobs(app, ["default"])  # the first attempt fails and is retried at once
    run_jobs(app, ["default"])
    code, out = _invoke(app, "status", job.id)
    assert code == 0, out
    assert f"job {job.id} in queue default: dead" in out
    assert "task: billing.charge" in out
    assert "arguments: (7)" in out
    assert "attempts: 2 of 2" in out
    assert "  1. " in out, "the first attempt, with its error"
    assert "  2. " in out, "the last attempt, with its error"
    assert out.count("KeyError: 'sku of invoice 7'") == 3, "two attempts, and the traceback"
    lines = out.splitlines()
    start = lines.index("traceback of the last failed attempt:")
    assert lines[start + 1] == "Traceback (most recent call last):", "real lines, not escaped"
    assert lines[-1] == "KeyError: 'sku of invoice 7'"
    assert "\\n" not in out
    assert "enqueued: 20" in out, "times as ISO 8601"
    assert "died: 20" in out
    assert ", ran " in out

    code, out = _invoke(app, "status", job.id, "--json")
    assert code == 0
    record = json.loads(out)
    assert (record["state"], record["attempts"], record["task"]) == ("dead", 2, "billing.charge")
    assert [a["attempt"] for a in record["history"]] == [1]
    for moment in ("enqueued_at", "started_at", "died_at"):
        assert record[moment].endswith("Z"), moment
        dt.datetime.fromisoformat(record[moment])
    assert dt.datetime.fromisoformat(record["history"][0]["ended_at"])
    assert record["run_s"] >= 0
    assert record["wait_s"] is None, "a retried job's start is its latest attempt's"


def test_dead_list_filters_by_task_and_error_and_pages_with_a_cursor(app: App) -> None:
    ids = _kill(app, jobs=3)
    code, out = _invoke(app, "dead", "list", "--limit", "2")
    assert code == 0
    assert "more: add --cursor" in out
    cursor = out.rsplit("--cursor ", 1)[1].split()[0]
    code, rest = _invoke(app, "dead", "list", "--limit", "2", "--cursor", cursor)
    assert code == 0
    shown = [i for i in ids if i in out] + [i for i in ids if i in rest]
    assert sorted(shown) == sorted(ids)
    assert "more:" not in rest

    code, out = _invoke(app, "dead", "list", "--error", "KeyError")
    assert code == 0
    assert not any(i in out for i in ids)
    code, out = _invoke(app, "dead", "list", "--task", "broken-default", "--since", "1h")
    assert all(i in out for i in ids)
    code, out = _invoke(app, "dead", "list", "--since", "yesterday-ish")
    assert code == 2
    assert "neither an age" in out


def test_queues_shows_how_long_the_oldest_ready_job_waits(app: App) -> None:
    @app.task(queue="reports")
    def build() -> None: ...

    build.delay()
    code, out = _invoke(app, "queues")
    assert code == 0
    row = next(line for line in out.splitlines() if "reports" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert cells[7].endswith("s")  # "0s": just enqueued
