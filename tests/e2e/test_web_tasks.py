"""Enqueue by name over HTTP: checked before it is sent, 202 with where to poll, batched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.web_api_support import Stack, api_stack, task, task_path


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with api_stack(redis_url, tmp_path_factory.mktemp("api-tasks")) as started:
        yield started


def _result(stack: Stack, job_id: str, queue: str = "default") -> Any:
    return stack.app.result(job_id, queue).get(timeout=20)


def _paths(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 422, reply.text
    return [problem["path"] for problem in reply.json()["detail"]]


def test_enqueue_by_name_answers_202_with_location_and_the_worker_runs_it(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        reply = client.post(task_path("add"), json={"args": [2, 3]})
        assert reply.status_code == 202, reply.text
        body = reply.json()
        assert body["created"] is True
        assert body["queue"] == "default"
        assert body["task"] == task("add")
        assert reply.headers["location"] == f"/v1/jobs/{body['id']}?queue=default"
        assert body["location"] == reply.headers["location"]
    assert _result(stack, body["id"]) == 5


def test_keyword_arguments_and_defaults_reach_the_task(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        reply = client.post(task_path("greet"), json={"kwargs": {"name": "ada"}})
    assert reply.status_code == 202, reply.text
    assert _result(stack, reply.json()["id"]) == "hello ada!"


def test_wrong_type_missing_and_extra_arguments_are_422_with_each_path(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        wrong = client.post(task_path("add"), json={"args": ["two", 3]})
        missing = client.post(task_path("add"), json={"args": [1]})
        extra = client.post(task_path("add"), json={"args": [1, 2, 3], "kwargs": {"z": 1}})
        both = client.post(task_path("add"), json={"args": ["x"], "kwargs": {"y": "y"}})
    assert _paths(wrong) == ["$.args[0]"]
    assert "Expected `int`, got `str`" in wrong.json()["detail"][0]["message"]
    assert _paths(missing) == ["$.kwargs.y"]
    assert _paths(extra) == ["$.args[2]", "$.kwargs.z"]
    assert _paths(both) == ["$.args[0]", "$.kwargs.y"]


def test_a_body_that_is_not_json_or_not_a_call_is_422(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        garbage = client.post(
            task_path("add"), content=b"{not json", headers={"content-type": "application/json"}
        )
        wrong_shape = client.post(task_path("add"), json={"args": {"x": 1}})
        unknown_option = client.post(task_path("add"), json={"args": [1, 2], "retries": 3})
        bad_priority = client.post(task_path("add"), json={"args": [1, 2], "priority": 12})
        naive_eta = client.post(task_path("add"), json={"args": [1, 2], "eta": "2030-01-01T00:00"})
    assert _paths(garbage) == ["$"]
    assert "not JSON" in garbage.json()["detail"][0]["message"]
    assert _paths(wrong_shape) == ["$.args"]
    assert _paths(unknown_option) == ["$"]
    assert "retries" in unknown_option.json()["detail"][0]["message"]
    assert _paths(bad_priority) == ["$.priority"]
    assert _paths(naive_eta) == ["$.eta"]


def test_an_unknown_task_is_404_naming_the_known_ones(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        reply = client.post("/v1/tasks/nope", json={})
    assert reply.status_code == 404
    assert "'nope'" in reply.json()["detail"]
    assert task("add") in reply.json()["detail"]


def test_a_body_over_the_limit_is_413_declared_or_streamed(stack: Stack) -> None:
    big = b'{"args": ["' + b"x" * (1 << 20) + b'", 1]}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    with stack.client("enqueue") as client:
        declared = client.post(task_path("add"), content=big)
        streamed = client.post(task_path("add"), content=chunks())
    assert declared.status_code == 413
    assert "limit of 1048576 bytes" in declared.json()["detail"]
    assert streamed.status_code == 413


def test_enqueue_needs_the_task_scope(stack: Stack) -> None:
    with stack.client("add") as client:
        allowed = client.post(task_path("add"), json={"args": [1, 1]})
        refused = client.post(task_path("greet"), json={"args": ["x"]})
    with stack.client("read") as client:
        reader = client.post(task_path("add"), json={"args": [1, 1]})
    assert allowed.status_code == 202
    assert refused.status_code == 403
    assert reader.status_code == 403


def test_an_idempotency_key_by_body_or_header_answers_with_the_first_job(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        first = client.post(task_path("add"), json={"args": [1, 2], "idempotency_key": "k-1"})
        again = client.post(task_path("add"), json={"args": [1, 2], "idempotency_key": "k-1"})
        header = client.post(
            task_path("add"), json={"args": [1, 2]}, headers={"idempotency-key": "k-1"}
        )
        other = client.post(
            task_path("add"), json={"args": [1, 2]}, headers={"idempotency-key": "k-2"}
        )
        clash = client.post(
            task_path("add"),
            json={"args": [1, 2], "idempotency_key": "a"},
            headers={"idempotency-key": "b"},
        )
    assert first.json()["created"] is True
    assert again.status_code == header.status_code == 202
    assert again.json()["id"] == header.json()["id"] == first.json()["id"]
    assert again.json()["created"] is header.json()["created"] is False
    assert other.json()["created"] is True
    assert other.json()["id"] != first.json()["id"]
    assert _paths(clash) == ["$.idempotency_key"]


def test_a_countdown_delays_the_job(stack: Stack) -> None:
    with stack.client("enqueue") as client:
        reply = client.post(task_path("add"), json={"args": [1, 2], "countdown": 30})
    job = stack.app.inspector.job("default", reply.json()["id"])
    assert job is not None
    assert job.state == "scheduled"
    assert job.due_at is not None
    assert job.due_at > time.time() + 20


def test_a_batch_is_checked_whole_then_sent(stack: Stack) -> None:
    jobs = [
        {"task": task("add"), "args": [1, 2]},
        {"task": task("greet"), "kwargs": {"name": "bo"}},
        {"task": task("add"), "args": [5, 5], "queue": "other"},
    ]
    with stack.client("enqueue") as client:
        reply = client.post("/v1/batch", json={"jobs": jobs})
        assert reply.status_code == 202, reply.text
        sent = reply.json()["jobs"]
        bad = client.post(
            "/v1/batch",
            json={
                "jobs": [jobs[0], {"task": task("add"), "args": ["x", 1]}, {"task": task("greet")}]
            },
        )
        unknown = client.post("/v1/batch", json={"jobs": [{"task": "nope"}]})
    assert [job["queue"] for job in sent] == ["default", "default", "other"]
    assert _result(stack, sent[0]["id"]) == 3
    assert _result(stack, sent[1]["id"]) == "hello bo!"
    assert stack.app.inspector.job("other", sent[2]["id"]) is not None
    assert _paths(bad) == ["$.jobs[1].args[0]", "$.jobs[2].kwargs.name"]
    assert unknown.status_code == 404
    queued_before = stack.app.inspector.queue("default").stats.get("enqueued", 0)
    with stack.client("add") as client:
        refused = client.post("/v1/batch", json={"jobs": jobs})
    assert refused.status_code == 403
    assert task("greet") in refused.json()["detail"]
    assert stack.app.inspector.queue("default").stats.get("enqueued", 0) == queued_before


def test_errands_schema_prints_each_tasks_request_schema(stack: Stack, tmp_path: Path) -> None:
    from tests.e2e.env_app import run_errands

    done = run_errands(stack.app, "tests.e2e.web_app:app", "schema", "tests.e2e.web_app:app")
    assert done.returncode == 0, done.stderr
    import json

    document = json.loads(done.stdout)
    add = document["tasks"][task("add")]
    assert add["properties"]["args"]["prefixItems"][0]["type"] == "integer"
    with stack.client("") as anonymous:
        served = anonymous.get("/openapi.json").json()
    body = served["paths"][task_path("add")]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == add
