"""The dashboard on a bad day: Redis gone (a 503 page that says so), a record broken by hand.

The Redis-gone test runs a redis-server of its own (`tests.faults.servers.RedisServer`) and
stops it by pid while the dashboard's session is open.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from errands import App
from errands.broker.redis import RedisBroker
from tests.e2e.dashboard_support import logged_in, task_name
from tests.e2e.web_support import api_server, make_token
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers, wait_until

pytestmark = pytest.mark.timeout(60)


def test_redis_gone_shows_a_503_page_that_says_so(tmp_path: Path, namespace: str) -> None:
    server = RedisServer(tmp_path / "redis").start()
    app = App(server.url, namespace=namespace)
    try:
        token = make_token(app, "read")
        with api_server(app, tmp_path) as api, logged_in(api, token) as client:
            assert client.get("/").status_code == 200
            server.stop()
            for path in ("/", "/queues/default", "/dead", "/jobs/abc", "/schedules"):
                reply = client.get(path)
                assert reply.status_code == 503, path
                assert "Redis cannot be reached" in reply.text, path
                assert "Traceback" not in reply.text
            with api.client() as anonymous:
                login = anonymous.post("/login", data={"token": token})
                assert login.status_code == 503
                assert "Redis cannot be reached" in login.text
    finally:
        server.stop()
        app.close()


def test_a_dead_job_whose_record_is_broken_still_shows(
    app: App, tmp_path: Path, redis_url: str
) -> None:
    workers = Workers(redis_url, app.namespace, tmp_path, app_spec="tests.e2e.web_app:app")
    try:
        workers.start()
        job = app.send_task(task_name(app, "fail"), ["boom"])
        wait_until(lambda: app.inspector.queue("default").dead == 1, 20.0, "the job dies")
    finally:
        workers.close()
    broker = RedisBroker(redis_url, namespace=app.namespace)
    try:
        broker.client.hset(broker.keys("default").prefix + "meta", job.id, b"\xc1 not msgpack")
    finally:
        broker.close()
    with api_server(app, tmp_path) as api, logged_in(api, make_token(app, "admin")) as client:
        listed = client.get("/dead?queue=default")
        assert listed.status_code == 200
        assert job.id in listed.text
        shown = client.get(f"/jobs/{job.id}?queue=default")
        assert shown.status_code == 200
        assert '<span class="state" data-j="state">dead</span>' in shown.text
