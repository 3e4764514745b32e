"""The event stream with a real worker, read back with ``errands events`` (a real process).

With ``events_maxlen`` set, a job that succeeds, one that retries, one that dies and one
cancelled before it ran each leave their events, in order, with task, attempt and error type;
``--json`` parses; ``--follow`` prints new events live and stops cleanly on Ctrl-C. Off (the
default), nothing is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
import redis

from errands import App, JobFailed
from errands.observe.events import stream_key
from tests.integration.observe_app import build
from tests.integration.workers import ROOT, Workers

pytestmark = pytest.mark.timeout(90)

APP_SPEC = "tests.integration.observe_app:app"


@pytest.fixture
def farm(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Workers]:
    workers = Workers(redis_url, namespace, tmp_path, app_spec=APP_SPEC)
    yield workers
    workers.close()


def _env(redis_url: str, namespace: str) -> dict[str, str]:
    return {
        **os.environ,
        "ERRANDS_BROKER_URL": redis_url,
        "ERRANDS_TEST_NAMESPACE": namespace,
        "PYTHONUNBUFFERED": "1",
    }


def _events_command(redis_url: str, namespace: str, *args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "errands", "events", "--app", APP_SPEC, "--json", *args],
        cwd=ROOT,
        env=_env(redis_url, namespace),
        capture_output=True,
        timeout=30,
        check=True,
    )
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def _story(events: list[dict[str, Any]], job: str) -> list[tuple[str, int, str | None]]:
    return [(e["event"], e["attempt"], e["error"]) for e in events if e["job"] == job]


def _run_the_four_jobs(app: App) -> dict[str, str]:
    ok = app.get_task("ok").delay(1)
    flaky = app.get_task("flaky").delay()
    doomed = app.get_task("doomed").delay()
    cancelled = app.get_task("ok").apply_async(args=(2,), countdown=60)
    assert cancelled.cancel()
    assert ok.get(timeout=20) == 1
    assert flaky.get(timeout=20) == 2
    with pytest.raises(JobFailed):
        doomed.get(timeout=20)
    return {"ok": ok.id, "flaky": flaky.id, "doomed": doomed.id, "cancelled": cancelled.id}


def test_each_job_leaves_its_story_in_the_stream_and_errands_events_prints_it(
    redis_url: str, namespace: str, farm: Workers
) -> None:
    farm.start("-c", "2")
    app = build(redis_url, namespace)
    ids = _run_the_four_jobs(app)
    events = _events_command(redis_url, namespace, "-q", "default")
    assert _story(events, ids["ok"]) == [
        ("enqueued", 0, None),
        ("started", 1, None),
        ("succeeded", 1, None),
    ]
    flaky = _story(events, ids["flaky"])
    assert [(event, attempt) for event, attempt, _ in flaky] == [
        ("enqueued", 0),
        ("started", 1),
        ("retried", 1),
        ("started", 2),
        ("succeeded", 2),
    ]
    assert flaky[2][2] == "errands.errors.Retry"
    assert _story(events, ids["doomed"]) == [
        ("enqueued", 0, None),
        ("started", 1, None),
        ("dead", 1, "LookupError"),
    ]
    assert _story(events, ids["cancelled"]) == [("enqueued", 0, None), ("cancelled", 0, None)]
    for event in events:
        assert event["queue"] == "default"
        assert event["task"] in {"ok", "flaky", "doomed"}
        assert event["at"].endswith("+00:00")
    # Reading from a time on: nothing is that new.
    assert _events_command(redis_url, namespace, "--since", "2100-01-01T00:00") == []
    app.close()


def _lines(stream: Any, into: Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)


def test_errands_events_follow_prints_new_events_live_and_stops_on_ctrl_c(
    redis_url: str, namespace: str, farm: Workers
) -> None:
    farm.start("-c", "1")
    app = build(redis_url, namespace)
    first = app.get_task("ok").delay(1)
    assert first.get(timeout=20) == 1
    follow = subprocess.Popen(
        [sys.executable, "-m", "errands", "events", "--app", APP_SPEC, "--follow", "--json"],
        cwd=ROOT,
        env=_env(redis_url, namespace),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: Queue[str] = Queue()
    reader = threading.Thread(target=_lines, args=(follow.stdout, lines), daemon=True)
    reader.start()
    try:
        seen: list[dict[str, Any]] = []
        while not any(e["job"] == first.id and e["event"] == "succeeded" for e in seen):
            seen.append(json.loads(lines.get(timeout=20)))  # the history first
        second = app.get_task("ok").delay(2)
        assert second.get(timeout=20) == 2
        while not any(e["job"] == second.id and e["event"] == "succeeded" for e in seen):
            try:
                seen.append(json.loads(lines.get(timeout=20)))
            except Empty:
                pytest.fail(f"--follow printed no event of the new job: {seen}")
        assert [e["event"] for e in seen if e["job"] == second.id] == [
            "enqueued",
            "started",
            "succeeded",
        ]
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 0
        assert follow.stderr is not None
        assert "Traceback" not in follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(timeout=10)
        reader.join(timeout=10)
        for pipe in (follow.stdout, follow.stderr):
            if pipe is not None:
                pipe.close()
    app.close()


def test_the_stream_is_off_by_default_and_writes_nothing(
    redis_url: str, namespace: str, tmp_path: Path, client: redis.Redis
) -> None:
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP_SPEC)
    try:
        farm.start("-c", "1", env={"ERRANDS_TEST_EVENTS": "0"})
        app = build(redis_url, namespace, events_maxlen=0)
        _run_the_four_jobs(app)
        assert client.exists(stream_key(namespace, "default")) == 0
        app.close()
    finally:
        farm.close()
