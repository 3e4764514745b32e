"""The operator routes on a bad day: Redis gone (503 with what to do, never 500), Redis a
read-only replica (the writes are 503, the reads answer), and records someone overwrote.

Each test runs its own ``redis-server`` and its own ``errands api`` on it, both stopped by pid.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.web_support import api_server, make_token
from tests.faults.servers import RedisServer

from errands import App
from errands.broker.redis.series import series_keys

_READS = ("/v1/queues", "/v1/queues/q0", "/v1/workers", "/v1/dead", "/v1/schedules")
_WRITES = (
    "/v1/queues/q0/pause",
    "/v1/queues/q0/resume",
    "/v1/queues/q0/purge",
    "/v1/schedules/nope/trigger",
)


def _unavailable(detail: str) -> bool:
    # The route's own call or the token check before it: each names Redis and says to retry.
    return "Redis" in detail and ("try again" in detail or "retry later" in detail)


def test_every_operator_route_is_503_with_what_to_do_while_redis_is_down(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    app = App(server.url, namespace=namespace)
    try:
        app.send_task("add", args=[1, 2], queue="q0")
        admin = make_token(app, "admin")
        with api_server(app, tmp_path) as api, api.client(admin) as http:
            assert http.get("/v1/queues").status_code == 200
            server.kill()
            for path in _READS:
                reply = http.get(path)
                assert reply.status_code == 503, (path, reply.text)
                assert _unavailable(reply.json()["detail"]), reply.text
                assert reply.headers["Retry-After"] == "5"
            for path in _WRITES:
                reply = http.post(path)
                assert reply.status_code == 503, (path, reply.text)
            reply = http.post("/v1/dead/retry", json={"queue": "q0", "ids": ["x"]})
            assert reply.status_code == 503
            assert http.delete("/v1/dead/x").status_code == 503
        assert "Traceback" not in api.log.read_text(), "no error escaped to the server's log"
    finally:
        app.close()


def test_on_a_read_only_replica_writes_are_503_and_reads_answer(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    primary = RedisServer(tmp_path / "primary").start()
    try:
        app = App(primary.url, namespace=namespace)
        try:
            app.send_task("add", args=[1, 2], queue="q0")
            operate, read = make_token(app, "operate"), make_token(app, "read")
        finally:
            app.close()
        server.replica_of(primary)
        server.wait_in_sync()
        replica = App(server.url, namespace=namespace)
        try:
            with api_server(replica, tmp_path) as api:
                with api.client(read) as http:
                    assert http.get("/v1/queues/q0").json()["ready"] == 1
                with api.client(operate) as http:
                    reply = http.post("/v1/queues/q0/pause")
                    assert reply.status_code == 503, reply.text
                    assert "READONLY" in reply.json()["detail"]
        finally:
            replica.close()
    finally:
        primary.stop()


def test_an_overwritten_series_and_a_dead_job_without_its_record_still_read(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    app = App(server.url, namespace=namespace)
    try:
        app.send_task("add", args=[1, 2], queue="q0")
        client = server.client()
        try:
            client.set(series_keys(namespace, "q0")[1], "not a hash")
            # A dead job whose record is gone (someone deleted its keys by hand).
            client.zadd(f"{namespace}:{{q0}}:dead", {"lost-job": 1_700_000_000_000})
        finally:
            client.close()
        read = make_token(app, "read", "read:payloads")
        with api_server(app, tmp_path) as api, api.client(read) as http:
            queue = http.get("/v1/queues/q0")
            assert queue.status_code == 200, queue.text
            assert all(p["enqueued"] is None for p in queue.json()["throughput"])
            dead = http.get("/v1/dead", params={"queue": "q0"})
            assert dead.status_code == 200, dead.text
            [job] = dead.json()["jobs"]
            assert (job["id"], job["task"], job["args"]) == ("lost-job", "?", None)
    finally:
        app.close()
