"""The operator CLI on real Redis: finding the app, --json, what it read, asking, exit codes.

The app is `tests.e2e.shop_app` in the test's own namespace, named by ``ERRANDS_APP`` as an
operator would; some tests run ``python -m errands`` for a real pipe or a real terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from errands import App
from errands.cli import main
from errands.testing import run_jobs
from tests.e2e.env_app import ROOT, environment, run_errands
from tests.e2e.shop_app import SPEC, build

# An id longer than an 80-column table's share of it, and a queue name that would be cut too.
_LONG_ID = "invoice-2026-000123-reminder-7f3c9d2e4b1a4e8f9a0b1c2d3e4f5a6b-final"
_LONG_QUEUE = "emails-transactional-eu-west-1-priority"


@pytest.fixture
def shop(redis_url: str, namespace: str) -> Iterator[App]:
    app = build(redis_url, namespace)
    yield app
    app.close()


def _env(app: App, **extra: str) -> dict[str, str]:
    return environment(app, SPEC, **extra)


def _cli(app: App, *args: str, **extra: str) -> Result:
    return CliRunner().invoke(main, list(args), env=_env(app, **extra))


def _run(app: App, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_errands(app, SPEC, *args, **extra)


def _kill(app: App, count: int = 1, job_id: str | None = None) -> list[str]:
    send = app.tasks["mail.send"]
    ids = [send.apply_async(["a@b.c"], job_id=job_id).id if job_id else send.delay("a@b.c").id
           for _ in range(count)]  # fmt: skip
    run_jobs(app, ["emails"])
    assert app.inspector.queue("emails").dead == count
    return ids


def test_every_read_command_prints_one_json_document(shop: App) -> None:
    [dead_id] = _kill(shop)
    ready = shop.tasks["mail.digest"].delay(7)
    shop.schedules.upsert("digest", "mail.digest", cron="0 7 * * *", tz="Europe/Prague", args=[1])

    queues = json.loads(_cli(shop, "queues", "--json").stdout)
    assert (queues["namespace"], queues["broker"]) == (shop.namespace, shop.broker_url)
    [emails] = queues["queues"]
    assert (emails["name"], emails["ready"], emails["dead"]) == ("emails", 1, 1)
    assert emails["oldest_ready_age_s"] >= 0, "a duration, in seconds"

    job = json.loads(_cli(shop, "status", ready.id, "--json").stdout)
    assert (job["task"], job["args"], job["state"]) == ("mail.digest", [7], "queued")
    assert dt.datetime.fromisoformat(job["enqueued_at"]).tzinfo == dt.UTC

    dead = json.loads(_cli(shop, "dead", "list", "-q", "emails", "--json").stdout)
    [entry] = dead["jobs"]
    assert (entry["id"], entry["task"], entry["error"]["type"]) == (
        dead_id,
        "mail.send",
        "ConnectionRefusedError",
    )
    assert entry["died_at"].endswith("Z")
    assert dead["cursor"] is None

    schedules = json.loads(_cli(shop, "schedules", "list", "--json").stdout)
    [digest] = schedules["schedules"]
    assert digest["id"] == "digest"
    assert digest["next_fire"].endswith(("T05:00:00.000Z", "T06:00:00.000Z")), "7:00 in Prague"

    limits = json.loads(_cli(shop, "limits", "--json").stdout)
    [mailer] = limits["limiters"]
    assert (mailer["name"], mailer["queue"], mailer["rate"]) == ("mailer", "emails", "5/s")


def test_a_command_that_finds_nothing_says_what_it_read_and_how_to_read_elsewhere(
    shop: App,
) -> None:
    plain = ["--broker-url", shop.broker_url, "--namespace", shop.namespace]
    result = CliRunner().invoke(main, ["queues", *plain])
    assert result.exit_code == 0
    said = result.stderr
    assert f"no queues in namespace {shop.namespace!r} at {shop.broker_url}" in said
    assert "--app" in said
    assert "ERRANDS_APP" in said
    assert "[tool.errands]" in said

    result = CliRunner().invoke(main, ["status", "j-404", *plain])
    assert result.exit_code == 1
    assert "no job j-404 in queue(s) default (it never existed" in result.stderr
    assert f"namespace {shop.namespace!r} at {shop.broker_url}" in result.stderr
    assert "ERRANDS_APP" in result.stderr

    result = _cli(shop, "dead", "list")
    assert result.exit_code == 0
    assert result.stderr.startswith(
        f"no dead jobs in queue default in namespace {shop.namespace!r} at {shop.broker_url} "
        f"(app {SPEC} from ERRANDS_APP); to read another app, use --app or ERRANDS_APP"
    )
    result = _cli(shop, "dead", "list", "--json")
    assert json.loads(result.stdout)["jobs"] == [], "the document parses, the note is on stderr"


def test_dead_purge_without_ids_refuses_off_a_terminal_and_deletes_with_yes(shop: App) -> None:
    _kill(shop, 2)
    result = _cli(shop, "dead", "purge", "-q", "emails")
    assert result.exit_code == 2
    assert "refusing to delete the oldest 2 of 2 dead job(s) of queue emails" in result.stderr
    assert "add --yes" in result.stderr
    assert shop.inspector.queue("emails").dead == 2, "nothing deleted"

    result = _cli(shop, "dead", "purge", "-q", "emails", "--yes")
    assert (result.exit_code, result.stdout.strip()) == (
        0,
        "2 dead job(s) deleted from queue emails",
    )
    assert shop.inspector.queue("emails").dead == 0


def _on_a_terminal(app: App, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run ``python -m errands ARGS`` on a pseudo-terminal, answer its question; (code, text)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "errands", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=ROOT,
        env={**os.environ, **_env(app)},
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 1)[0]:
                seen += os.read(leader, 4096)
        os.write(leader, answer)
        code = process.wait(timeout=30)
        while select.select([leader], [], [], 0.2)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, seen.decode(errors="replace")


def test_dead_purge_asks_on_a_terminal_and_a_no_changes_nothing(shop: App) -> None:
    _kill(shop, 1)
    code, text = _on_a_terminal(shop, ["dead", "purge", "-q", "emails"], b"n\n")
    assert "Delete the oldest 1 of 1 dead job(s) of queue emails for good? [y/N]" in text
    assert code == 1
    assert "nothing changed" in text
    assert shop.inspector.queue("emails").dead == 1

    code, text = _on_a_terminal(shop, ["dead", "purge", "-q", "emails"], b"y\n")
    assert code == 0, text
    assert "1 dead job(s) deleted from queue emails" in text
    assert shop.inspector.queue("emails").dead == 0


def test_retry_and_purge_that_change_nothing_exit_1_and_say_why(shop: App) -> None:
    result = _cli(shop, "dead", "retry", "-q", "emails", "nope")
    assert result.exit_code == 1
    assert "0 job(s) back in queue emails; not in the dead set of queue emails" in result.stderr
    assert result.stderr.rstrip().endswith(": nope")

    result = _cli(shop, "dead", "retry", "-q", "emails")
    assert result.exit_code == 1
    assert "no dead jobs in queue emails" in result.stderr

    result = _cli(shop, "dead", "purge", "-q", "emails", "nope", "--yes")
    assert result.exit_code == 1
    assert "nothing deleted; not in the dead set of queue emails" in result.stderr

    [dead_id] = _kill(shop, 1)
    result = _cli(shop, "dead", "retry", "-q", "emails", dead_id, "nope")
    assert result.exit_code == 1, "one of the two was not dead"
    assert "1 job(s) back in queue emails; not in the dead set" in result.stderr
    assert shop.inspector.queue("emails").ready == 1


def test_ids_and_queue_names_are_whole_in_a_pipe_at_80_columns(shop: App) -> None:
    _kill(shop, 1, job_id=_LONG_ID)
    shop.tasks["mail.digest"].apply_async([1], queue=_LONG_QUEUE)
    for args in (["dead", "list", "-q", "emails"], ["queues"]):
        result = _run(shop, *args, COLUMNS="80")
        assert result.returncode == 0, result.stderr
        assert "…" not in result.stdout
        lines = result.stdout.splitlines()
        wanted = _LONG_ID if args[0] == "dead" else _LONG_QUEUE
        assert any(wanted in line for line in lines), result.stdout
    result = _run(shop, "status", _LONG_ID, COLUMNS="80")
    assert f"job {_LONG_ID} in queue emails: dead" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["queues", "--json"], ["status", "j1"], ["dead", "list", "--json"], ["schedules", "list"]],
)
def test_an_unreachable_redis_is_one_line_naming_the_url(shop: App, command: list[str]) -> None:
    result = _run(shop, *command, ERRANDS_BROKER_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot reach Redis at redis://127.0.0.1:1/0")
    assert result.stdout == ""
