"""The dashboard over plain HTTP: sessions, CSRF, scope-dependent pages, live numbers, search.

Each test runs a real ``errands api`` process (`tests.e2e.web_support.api_server`) on real
Redis; the ones where jobs must fail run a real worker of `tests.e2e.web_app`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from errands import App
from errands.web.dashboard.session import COOKIE
from tests.e2e.dashboard_support import csrf_of, first_numbers, logged_in, task_name
from tests.e2e.web_support import ApiServer, api_server, make_token
from tests.integration.workers import Workers, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(app: App, tmp_path: Path) -> Iterator[ApiServer]:
    with api_server(app, tmp_path) as running:
        yield running


def test_every_page_without_a_session_redirects_to_the_login_form(server: ApiServer) -> None:
    with server.client() as anonymous:
        for path in ("/", "/dead?queue=x", "/jobs/abc", "/schedules", "/live/overview"):
            reply = anonymous.get(path)
            assert reply.status_code == 303, path
            assert reply.headers["location"].startswith("/login?next=/"), path
        form = anonymous.get("/login")
        assert form.status_code == 200
        assert 'name="token"' in form.text
        posted = anonymous.post("/dead/retry", data={"id": "x"})
        assert posted.status_code == 303
        assert posted.headers["location"].startswith("/login")
        assert "/login" not in anonymous.get("/openapi.json").text  # not part of the API


def test_login_keeps_the_token_in_a_strict_http_only_cookie_and_logout_ends_it(
    app: App, server: ApiServer
) -> None:
    token = make_token(app, "read")
    publisher = make_token(app, "enqueue:*")
    with server.client() as anonymous:
        wrong = anonymous.post("/login", data={"token": "erd_nope_nope"})
        assert wrong.status_code == 401
        assert "unknown, revoked or expired" in wrong.text
        assert COOKIE not in wrong.headers.get("set-cookie", "")
        refused = anonymous.post("/login", data={"token": publisher})
        assert refused.status_code == 403
        assert "lacks the scope &#39;read&#39;" in refused.text
        away = anonymous.post("/login", data={"token": token, "next": "https://evil.example/"})
        assert away.headers["location"] == "/"  # never sent to another site
        cookie = away.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}={token};")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
        assert "Secure" not in cookie  # the test server runs with --insecure-cookies
    with logged_in(server, token) as client:
        overview = client.get("/")
        assert overview.status_code == 200
        assert "<h1>Overview</h1>" in overview.text
        assert overview.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in overview.headers["content-security-policy"]
        assert client.post("/logout", data={}).status_code == 403  # no CSRF token
        out = client.post("/logout", data={"csrf": csrf_of(overview.text)})
        assert out.status_code == 303
        assert client.get("/").status_code == 303


def test_every_post_needs_its_sessions_csrf_token_and_its_own_origin(
    app: App, server: ApiServer
) -> None:
    mine, theirs = make_token(app, "operate", "read"), make_token(app, "operate", "read")
    with logged_in(server, mine) as client, logged_in(server, theirs) as other:
        csrf = csrf_of(client.get("/queues/default").text)
        other_csrf = csrf_of(other.get("/queues/default").text)
        pause = "/queues/default/pause"
        assert client.post(pause, data={"paused": "1"}).status_code == 403
        assert client.post(pause, data={"paused": "1", "csrf": "0" * 64}).status_code == 403
        assert client.post(pause, data={"paused": "1", "csrf": other_csrf}).status_code == 403
        evil = {"Origin": "https://evil.example"}
        foreign = client.post(pause, data={"paused": "1", "csrf": csrf}, headers=evil)
        assert foreign.status_code == 403
        assert "another site" in foreign.text
        assert not app.inspector.queue("default").paused
        own = {"Origin": server.url}
        done = client.post(pause, data={"paused": "1", "csrf": csrf}, headers=own)
        assert done.status_code == 303
        assert app.inspector.queue("default").paused
        assert "queue default paused" in client.get(done.headers["location"]).text


def _dead_job(app: App, tmp_path: Path, redis_url: str) -> str:
    workers = Workers(redis_url, app.namespace, tmp_path, app_spec="tests.e2e.web_app:app")
    try:
        workers.start()
        job = app.send_task(task_name(app, "fail"), ["boom-7c1"])
        wait_until(lambda: app.inspector.queue("default").dead == 1, 20.0, "the job dies")
    finally:
        workers.close()
    return job.id


def test_what_a_page_shows_and_offers_follows_the_tokens_scopes(
    app: App, server: ApiServer, tmp_path: Path, redis_url: str
) -> None:
    job_id = _dead_job(app, tmp_path, redis_url)
    page = f"/jobs/{job_id}"
    with logged_in(server, make_token(app, "read")) as reader:
        seen = reader.get(page)
        assert seen.status_code == 200
        assert "RuntimeError" in seen.text
        assert "Traceback (most recent call last)" in seen.text
        assert "boom-7c1" not in seen.text.split("<h2>Attempts</h2>")[0]  # arguments hidden
        assert "hidden: the token lacks read:payloads" in seen.text
        assert ">Retry<" not in seen.text
        assert ">Delete<" not in seen.text
        dead = reader.get("/dead?queue=default")
        assert job_id in dead.text
        assert ">Retry<" not in dead.text
        forced = reader.post("/dead/retry", data={"id": job_id, "csrf": csrf_of(seen.text)})
        assert forced.status_code == 403
        assert "lacks the scope &#39;operate&#39;" in forced.text
    with logged_in(server, make_token(app, "read", "operate", "read:payloads")) as operator:
        seen = operator.get(page)
        assert "(&#39;boom-7c1&#39;)" in seen.text  # autoescaped, and shown
        assert ">Retry<" in seen.text
        assert ">Delete<" not in seen.text
    with logged_in(server, make_token(app, "admin")) as admin:
        seen = admin.get(page)
        assert ">Retry<" in seen.text
        assert ">Delete<" in seen.text
        gone = admin.post(
            "/dead/delete",
            data={"id": job_id, "queue": "default", "csrf": csrf_of(seen.text)},
        )
        assert gone.status_code == 303
        assert "deleted 1 of 1 dead jobs" in admin.get(gone.headers["location"]).text
    assert app.inspector.queue("default").dead == 0


def test_live_numbers_the_chart_and_search_read_the_queues(app: App, server: ApiServer) -> None:
    now = time.time()
    app.broker.sample_throughput("default", now=now - 120)
    sent = [app.send_task(task_name(app, "add"), [1, 2]).id for _ in range(3)]
    app.broker.sample_throughput("default", now=now - 60)
    with logged_in(server, make_token(app, "read")) as client:
        overview = client.get("/").text
        assert "0 succeeded, 0 dead, 0 retried, 3 sent in the last hour" in overview
        assert "<svg" in overview
        assert "minutes not sampled" in overview  # the minutes before the first sample
        numbers = first_numbers(client, "/live/overview")
        assert numbers["queues"]["default"]["ready"] == 3
        one = first_numbers(client, "/live/queues/default")
        assert one["queues"]["default"]["ready"] == 3
        job = first_numbers(client, f"/live/jobs/{sent[0]}")
        assert job["job"]["state"] == "queued"
        found = client.get("/search", params={"q": sent[1]})
        assert found.status_code == 303
        assert found.headers["location"] == f"/jobs/{sent[1]}?queue=default"
        missing = client.get("/search", params={"q": "no-such-job"})
        assert "no job no-such-job in queue(s) default" in missing.text
        by_task = client.get(
            "/search", params={"task": "fail", "error_type": "KeyError", "queue": "default"}
        )
        assert by_task.headers["location"].startswith("/dead?queue=default&task=fail")
        bad = client.get("/jobs/<script>")
        assert bad.status_code in (400, 404)
        assert "<script>" not in bad.text


def test_schedules_show_code_ownership_and_pause_with_a_note(app: App, server: ApiServer) -> None:
    nap = task_name(app, "nap")
    app.schedules.upsert("nightly", task_name(app, "greet"), cron="0 3 * * *", kwargs={"name": "x"})
    with logged_in(server, make_token(app, "read", "operate")) as client:
        listed = client.get("/schedules")
        assert listed.status_code == 200
        code_row = listed.text.split(
            f'data-schedule="{nap.replace("<", "&lt;").replace(">", "&gt;")}"'
        )[1]
        assert "owned by code" in code_row.split("</tr>")[0]
        assert "no scheduler stored it yet" in code_row.split("</tr>")[0]
        paused = client.post(
            "/schedules/nightly/pause",
            data={"csrf": csrf_of(listed.text), "note": "deploy <b>window</b>"},
        )
        assert paused.status_code == 303
        shown = client.get(paused.headers["location"]).text
        assert "paused: <q>deploy &lt;b&gt;window&lt;/b&gt;</q>" in shown
        assert app.schedules.get("nightly").pause.note == "deploy <b>window</b>"
        missing = client.post("/schedules/nope/resume", data={"csrf": csrf_of(shown)})
        assert missing.status_code == 404
        assert "no schedule" in missing.text
