"""Follow a job over HTTP: poll, long-poll, server-sent events, cancel; payloads need a scope."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.web_api_support import Stack, api_stack, task, task_path
from tests.integration.workers import wait_until


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with api_stack(redis_url, tmp_path_factory.mktemp("api-jobs")) as started:
        yield started


def _send(stack: Stack, short: str, **body: Any) -> str:
    with stack.client("enqueue") as client:
        reply = client.post(task_path(short), json=body)
    assert reply.status_code == 202, reply.text
    job_id: str = reply.json()["id"]
    return job_id


def _read(stack: Stack, job_id: str, kind: str = "payloads", **params: Any) -> dict[str, Any]:
    with stack.client(kind) as client:
        reply = client.get(f"/v1/jobs/{job_id}", params=params, timeout=40.0)
    assert reply.status_code == 200, reply.text
    document: dict[str, Any] = reply.json()
    return document


def test_enqueue_by_name_and_poll_to_the_result(stack: Stack) -> None:
    job_id = _send(stack, "add", args=[20, 22])
    wait_until(
        lambda: _read(stack, job_id, queue="default")["state"] == "succeeded", 20, "the job to end"
    )
    job = _read(stack, job_id)  # no ?queue=: found by looking in each queue
    assert job["result"] == 42
    assert job["payloads_hidden"] is False
    assert job["finished_at"].endswith("Z")
    assert job["id"] == job_id


def test_a_read_token_sees_no_arguments_or_result(stack: Stack) -> None:
    job_id = _send(stack, "greet", args=["secret"], countdown=60)
    hidden = _read(stack, job_id, "read")
    shown = _read(stack, job_id, "payloads")
    assert hidden["args"] is None
    assert hidden["kwargs"] is None
    assert hidden["payloads_hidden"] is True
    assert hidden["task"] == task("greet")
    assert "secret" not in json.dumps(hidden)
    assert shown["args"] == ["secret"]
    assert shown["payloads_hidden"] is False


def test_a_failed_job_shows_its_error(stack: Stack) -> None:
    job_id = _send(stack, "fail", args=["no luck"])
    job = _read(stack, job_id, wait=20)
    assert job["state"] in ("failed", "dead")
    assert job["error"]["type"].endswith("RuntimeError")
    assert job["error"]["message"] == "no luck"


def test_an_unknown_job_is_404_and_reads_need_a_token(stack: Stack) -> None:
    with stack.client("read") as client:
        reply = client.get("/v1/jobs/" + "0" * 32)
        events = client.get("/v1/jobs/" + "0" * 32 + "/events")
        bad_queue = client.get("/v1/jobs/x", params={"queue": "no{braces}"})
    with stack.client("") as anonymous:
        refused = anonymous.get("/v1/jobs/" + "0" * 32)
    assert reply.status_code == 404
    assert "never existed" in reply.json()["detail"]
    assert events.status_code == 404
    assert bad_queue.status_code == 422
    assert bad_queue.json()["detail"][0]["path"] == "$.query.queue"
    assert refused.status_code == 401


def test_a_long_poll_answers_as_soon_as_the_job_ends(stack: Stack) -> None:
    job_id = _send(stack, "slow", args=[1.0])
    started = time.monotonic()
    job = _read(stack, job_id, wait=15)
    elapsed = time.monotonic() - started
    assert job["state"] == "succeeded"
    assert job["result"] == 1.0
    assert elapsed < 8  # the job's second and a worker's start, far from the 15 s asked for


def test_a_long_poll_times_out_with_the_job_still_pending(stack: Stack) -> None:
    job_id = _send(stack, "add", args=[1, 1], countdown=60)
    started = time.monotonic()
    job = _read(stack, job_id, wait=1)
    elapsed = time.monotonic() - started
    assert job["state"] == "scheduled"
    assert 0.9 <= elapsed < 5


def _events(stack: Stack, job_id: str) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    with (
        stack.client("payloads") as client,
        client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=30.0) as reply,
    ):
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in reply.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                seen.append((event, json.loads(line[len("data: ") :])))
    return seen


def test_server_sent_events_follow_the_job_to_its_end(stack: Stack) -> None:
    job_id = _send(stack, "report", args=[3], countdown=0.5)
    seen = _events(stack, job_id)
    names = [name for name, _ in seen]
    assert names[0] == "state"
    assert names[-1] == "end"
    assert names.count("end") == 1
    assert seen[-1][1]["state"] == "succeeded"
    assert seen[-1][1]["result"] == 3
    states = [data["state"] for name, data in seen if name == "state"]
    assert states[0] in ("scheduled", "queued")
    assert "active" in states or any(name == "progress" for name in names) or len(states) >= 2


def test_events_of_an_ended_job_are_one_state_and_the_end(stack: Stack) -> None:
    job_id = _send(stack, "add", args=[2, 2])
    _read(stack, job_id, wait=20)
    seen = _events(stack, job_id)
    assert [name for name, _ in seen] == ["state", "end"]
    assert seen[1][1]["result"] == 4


def test_cancel_a_waiting_job(stack: Stack) -> None:
    job_id = _send(stack, "add", args=[1, 2], countdown=60)
    with stack.client("read") as reader:
        refused = reader.post(f"/v1/jobs/{job_id}/cancel")
    with stack.client("admin") as operator:
        cancelled = operator.post(f"/v1/jobs/{job_id}/cancel")
        again = operator.post(f"/v1/jobs/{job_id}/cancel")
        unknown = operator.post("/v1/jobs/" + "0" * 32 + "/cancel")
    assert refused.status_code == 403
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"id": job_id, "queue": "default", "outcome": "cancelled"}
    assert _read(stack, job_id)["state"] == "cancelled"
    assert again.status_code == 409
    assert "already ended" in again.json()["detail"]
    assert unknown.status_code == 404
