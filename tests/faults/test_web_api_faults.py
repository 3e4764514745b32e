"""The HTTP API on a bad day: Redis gone, full or read-only answers 503 with what happened, a
record broken by hand reads as what it is, and the API serves again once Redis is back.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.e2e.web_api_support import task, task_path
from tests.e2e.web_app import build
from tests.e2e.web_support import api_server, make_token
from tests.faults.servers import RedisServer
from tests.integration.workers import wait_until

from errands.broker.redis import RedisBroker


def _is_503(reply: httpx.Response) -> str:
    assert reply.status_code == 503, reply.text
    assert reply.headers["content-type"] == "application/json"
    detail: str = reply.json()["detail"]
    assert "Traceback" not in detail
    return detail


@pytest.mark.timeout(90)
def test_redis_down_is_503_and_the_api_serves_again_when_it_is_back(
    tmp_path: Path, namespace: str
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        app = build(server.url, namespace)
        token = make_token(app, "admin")
        with api_server(app, tmp_path) as api, api.client(token) as client:
            sent = client.post(task_path("add"), json={"args": [1, 2], "countdown": 60})
            assert sent.status_code == 202
            job_id = sent.json()["id"]
            server.kill()

            started = time.monotonic()
            assert "Redis" in _is_503(client.post(task_path("add"), json={"args": [1, 2]}))
            _is_503(client.get(f"/v1/jobs/{job_id}"))
            _is_503(
                client.post("/v1/batch", json={"jobs": [{"task": task("add"), "args": [1, 1]}]})
            )
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unready"
            assert "Redis" in ready.json()["detail"]
            assert client.get("/healthz").status_code == 200
            assert time.monotonic() - started < 20  # each refusal comes fast, not at a timeout

            server.start()

            def serves() -> bool:
                return client.get(f"/v1/jobs/{job_id}").status_code == 200

            wait_until(serves, 20, "the API to serve once Redis is back")
            assert client.post(task_path("add"), json={"args": [1, 2]}).status_code == 202
        assert "Traceback" not in api.log.read_text()
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_a_full_redis_refuses_an_enqueue_with_503_and_still_serves_reads(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    app = build(server.url, namespace)
    token = make_token(app, "admin")
    with api_server(app, tmp_path) as api, api.client(token) as client:
        sent = client.post(task_path("add"), json={"args": [1, 2], "countdown": 60})
        server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
        try:
            detail = _is_503(client.post(task_path("add"), json={"args": [3, 4]}))
            assert "full" in detail
            assert client.get(f"/v1/jobs/{sent.json()['id']}").status_code == 200
        finally:
            server.command("CONFIG", "SET", "maxmemory", "0")
        assert client.post(task_path("add"), json={"args": [3, 4]}).status_code == 202


@pytest.mark.timeout(60)
def test_a_read_only_redis_refuses_an_enqueue_with_503(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    app = build(server.url, namespace)
    token = make_token(app, "admin")
    replica = RedisServer(tmp_path / "replica").start()
    try:
        replica.replica_of(server)
        replica.wait_in_sync()
        on_replica = build(replica.url, namespace)
        with api_server(on_replica, tmp_path) as api, api.client(token) as client:
            detail = _is_503(client.post(task_path("add"), json={"args": [1, 2]}))
            assert "READONLY" in detail or "replica" in detail
    finally:
        replica.stop()


@pytest.mark.timeout(60)
def test_a_job_record_broken_by_hand_reads_without_a_5xx(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    app = build(server.url, namespace)
    token = make_token(app, "admin")
    with api_server(app, tmp_path) as api, api.client(token) as client:
        job_id = client.post(task_path("add"), json={"args": [1, 2], "countdown": 60}).json()["id"]
        prefix = RedisBroker(server.url, namespace=namespace).keys("default").prefix
        server.command("HSET", prefix + "jobs", job_id, b"not json")
        server.command("HSET", prefix + "meta", job_id, b"\xc1 not msgpack")
        reply = client.get(f"/v1/jobs/{job_id}", params={"queue": "default"})
        cancel = client.post(f"/v1/jobs/{job_id}/cancel", params={"queue": "default"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["state"] == "corrupt"
    assert reply.json()["args"] is None
    assert cancel.status_code == 409, cancel.text
