"""The operator's commands of the `errands` CLI on real Redis: purge, pause, resume, cancel.

Each changes something, or exits non-zero and says why it changed nothing; a destructive one
asks, or needs --yes, and refuses where no one can answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from errands import App
from errands.cli import main
from errands.cli_ops import PURGE_BATCH
from errands.testing import run_jobs


def _invoke(app: App, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, [*args, "--broker-url", app.broker_url, "--namespace", app.namespace], input=stdin
    )
    return result.exit_code, result.output


@pytest.fixture
def sent(app: App) -> list[str]:
    """Three ready jobs and one delayed one in queue `mail`."""

    @app.task(queue="mail", name="send")
    def send(n: int) -> int:
        return n

    ready = [send.delay(n).id for n in range(3)]
    delayed = send.apply_async((9,), countdown=600).id
    return [*ready, delayed]


def test_purge_deletes_the_ready_jobs_with_yes_and_leaves_the_delayed_ones(
    app: App, sent: list[str]
) -> None:
    code, out = _invoke(app, "purge", "mail", "--yes")
    assert code == 0, out
    assert "3 ready job(s) deleted from queue mail" in out
    summary = app.inspector.queue("mail")
    assert (summary.ready, summary.delayed) == (0, 1)
    assert app.inspector.job("mail", sent[0]) is None, "the job's record went with it"

    code, out = _invoke(app, "purge", "mail", "--yes")
    assert code == 1
    assert "nothing to purge" in out
    assert "add --delayed" in out
    code, out = _invoke(app, "purge", "mail", "--yes", "--delayed")
    assert code == 0, out
    assert "1 ready or delayed job(s) deleted" in out
    assert app.inspector.queue("mail").delayed == 0


def test_purge_without_yes_and_no_terminal_refuses_and_deletes_nothing(
    app: App, sent: list[str]
) -> None:
    code, out = _invoke(app, "purge", "mail", stdin="y\n")
    assert code == 2
    assert "add --yes" in out
    assert "3 ready" in out
    assert app.inspector.queue("mail").ready == 3


def test_purge_of_an_unknown_queue_names_the_known_ones(app: App, sent: list[str]) -> None:
    code, out = _invoke(app, "purge", "mial", "--yes")
    assert code == 1
    assert "no queue 'mial'" in out
    assert "known queues: mail" in out


def test_pause_and_resume_say_when_they_change_nothing_and_queues_shows_paused(
    app: App, sent: list[str]
) -> None:
    code, out = _invoke(app, "pause", "mail")
    assert (code, "queue mail paused" in out) == (0, True), out
    code, out = _invoke(app, "pause", "mail")
    assert code == 1
    assert "already paused" in out
    code, out = _invoke(app, "queues")
    row = next(line for line in out.splitlines() if "mail" in line)
    assert [cell.strip() for cell in row.split("│")][6] == "yes"
    code, out = _invoke(app, "resume", "mail")
    assert (code, "queue mail resumed" in out) == (0, True), out
    code, out = _invoke(app, "resume", "mail")
    assert code == 1
    assert "is not paused" in out


def test_cancel_a_queued_job_then_again_and_an_unknown_one(app: App, sent: list[str]) -> None:
    code, out = _invoke(app, "cancel", sent[0])
    assert code == 0, out
    assert "cancelled: it will never run" in out
    assert app.inspector.job("mail", sent[0]).state == "cancelled"  # type: ignore[union-attr]
    code, out = _invoke(app, "cancel", sent[0], "-q", "mail")
    assert code == 1
    assert "already finished (cancelled)" in out
    code, out = _invoke(app, "cancel", "no-such-job")
    assert code == 1
    assert "no job no-such-job in queue(s) mail" in out


def test_workers_with_none_running_says_what_it_read_and_json_is_an_empty_list(
    app: App, sent: list[str]
) -> None:
    code, out = _invoke(app, "workers")
    assert code == 0
    assert f"no live worker in namespace '{app.namespace}'" in out
    code, out = _invoke(app, "workers", "--json", "-q", "mail")
    assert code == 0
    assert json.loads(out)["workers"] == []


def _purge_on_a_terminal(app: App, answer: bytes) -> tuple[int, str]:
    """`errands purge mail` with a terminal for stdin and stdout, answering its question."""
    primary, secondary = pty.openpty()
    args = ["purge", "mail", "--broker-url", app.broker_url, "--namespace", app.namespace]
    proc = subprocess.Popen(
        [sys.executable, "-m", "errands", *args],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"[y/N]" not in seen:
            assert time.monotonic() < deadline, f"no question within 30s: {seen!r}"
            ready, _, _ = select.select([primary], [], [], 1.0)
            if ready:
                seen += os.read(primary, 4096)
        os.write(primary, answer + b"\n")
        code = proc.wait(timeout=30)
        with contextlib.suppress(OSError):  # the terminal closes with the process
            while chunk := os.read(primary, 4096):
                seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(primary)
    return code, seen.decode(errors="replace")


def test_purge_on_a_terminal_asks_showing_how_many_and_does_nothing_unless_told_yes(
    app: App, sent: list[str]
) -> None:
    code, out = _purge_on_a_terminal(app, b"n")
    assert code == 1, out
    assert "Delete 3 ready job(s) of queue 'mail'" in out
    assert "nothing changed" in out
    assert app.inspector.queue("mail").ready == 3
    code, out = _purge_on_a_terminal(app, b"y")
    assert code == 0, out
    assert "3 ready job(s) deleted from queue mail" in out
    assert app.inspector.queue("mail").ready == 0


def test_purge_goes_on_batch_after_batch_until_every_counted_job_is_gone(app: App) -> None:
    @app.task(queue="bulk", name="bulk")
    def bulk(n: int) -> int:
        return n

    count = PURGE_BATCH * 2 + 10
    for n in range(count):
        bulk.delay(n)
    code, out = _invoke(app, "purge", "bulk", "--yes")
    assert code == 0, out
    assert f"{count} ready job(s) deleted from queue bulk" in out
    assert app.inspector.queue("bulk").ready == 0


def test_cancel_of_a_dead_job_says_how_to_delete_it_and_leaves_it(app: App) -> None:
    @app.task(max_retries=0, name="broken", queue="mail")
    def broken() -> None:
        raise ValueError("no customer on invoice 7")

    job = broken.delay()
    run_jobs(app, ["mail"])
    code, out = _invoke(app, "cancel", job.id)
    assert code == 1
    assert "is dead" in out
    assert f"errands dead purge -q mail {job.id}" in out
    assert app.inspector.queue("mail").dead == 1
