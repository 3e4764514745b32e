"""The operator routes over real HTTP: queues (paged, one with its throughput, pause, resume,
purge) and workers, each with its scope check, against a real ``errands api`` and Redis.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from errands import App
from errands.broker.series import minute_of
from errands.cli_output import iso_json
from tests.e2e.env_app import run_errands
from tests.e2e.web_support import api_server, make_token
from tests.integration.workers import Workers, wait_until

_SPEC = "tests.e2e.web_app:app"


def _fill(app: App, queues: int, per_queue: int = 1) -> None:
    for q in range(queues):
        for n in range(per_queue):
            app.send_task("add", args=[q, n], queue=f"q{q}")


def test_queues_page_through_more_than_one_page_in_the_shape_the_cli_prints(
    app: App, tmp_path: Path
) -> None:
    _fill(app, 5)
    read = make_token(app, "read")
    with api_server(app, tmp_path) as server, server.client(read) as http:
        pages, listed, cursor = [], [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            reply = http.get("/v1/queues", params=params)
            assert reply.status_code == 200, reply.text
            page = reply.json()
            pages.append([q["name"] for q in page["queues"]])
            listed += page["queues"]
            cursor = page["cursor"]
            if cursor is None:
                break
        assert pages == [["q0", "q1"], ["q2", "q3"], ["q4"]]
        cli = run_errands(app, _SPEC, "queues", "--json")
        assert cli.returncode == 0, cli.stderr
        by_cli = {q["name"]: q for q in json.loads(cli.stdout)["queues"]}
        for queue in listed:
            # The age of the oldest ready job grows between the two reads; the rest is equal.
            ours, theirs = dict(queue), dict(by_cli[queue["name"]])
            assert ours.pop("oldest_ready_age_s") <= theirs.pop("oldest_ready_age_s")
            assert ours == theirs, "the API and the CLI say the same thing"

        assert http.get("/v1/queues", params={"limit": 0}).status_code == 422
        assert http.get("/v1/queues", params={"limit": 1001}).status_code == 422


def test_a_queue_reads_with_its_throughput_and_an_unknown_one_is_404(
    app: App, tmp_path: Path
) -> None:
    _fill(app, 1, per_queue=3)
    read = make_token(app, "read")
    with api_server(app, tmp_path) as server, server.client(read) as http:
        reply = http.get("/v1/queues/q0")
        assert reply.status_code == 200, reply.text
        queue = reply.json()
        assert (queue["name"], queue["ready"], queue["stats"]["enqueued"]) == ("q0", 3, 3)
        series = queue["throughput"]
        assert len(series) == 60, "an hour of minutes, oldest first"
        minutes = [point["minute"] for point in series]
        assert minutes == sorted(minutes)
        now = time.time()
        assert series[-1]["minute"] in {
            iso_json(minute_of(at * 1000)) for at in (now - 120, now - 60)
        }
        # The server sampled the queue when it started: the minute under way is not closed yet,
        # so every point is still a gap, never a zero.
        assert all(point["enqueued"] is None for point in series)

        missing = http.get("/v1/queues/nope")
        assert missing.status_code == 404
        assert "GET /v1/queues" in missing.json()["detail"]
        assert http.get("/v1/queues/bad name!").status_code == 422


def test_pause_and_resume_need_operate_and_purge_needs_admin(app: App, tmp_path: Path) -> None:
    _fill(app, 1, per_queue=4)
    app.send_task("add", args=[9, 9], queue="q0", countdown=600)
    tokens = {scope: make_token(app, scope) for scope in ("read", "operate", "admin")}
    with api_server(app, tmp_path) as server:
        with server.client(tokens["read"]) as reader:
            refused = reader.post("/v1/queues/q0/pause")
            assert refused.status_code == 403
            assert "operate" in refused.json()["detail"]
        with server.client() as anonymous:
            assert anonymous.post("/v1/queues/q0/pause").status_code == 401
        with server.client(tokens["operate"]) as operator:
            paused = operator.post("/v1/queues/q0/pause")
            assert paused.json() == {"queue": "q0", "paused": True, "changed": True}
            assert app.inspector.queue("q0").paused
            again = operator.post("/v1/queues/q0/pause").json()
            assert again["changed"] is False, "pausing a paused queue changes nothing"
            assert operator.post("/v1/queues/q0/resume").json()["changed"] is True
            assert not app.inspector.queue("q0").paused
            assert operator.post("/v1/queues/nope/pause").status_code == 404
            assert operator.post("/v1/queues/q0/purge").status_code == 403, "purge is admin's"
        with server.client(tokens["admin"]) as admin:
            purged = admin.post("/v1/queues/q0/purge")
            assert purged.json() == {"queue": "q0", "deleted": 4, "delayed": False, "more": False}
            summary = app.inspector.queue("q0")
            assert (summary.ready, summary.delayed) == (0, 1), "delayed jobs stay without it"
            purged = admin.post("/v1/queues/q0/purge", params={"delayed": "true"})
            assert purged.json()["deleted"] == 1
            assert app.inspector.queue("q0").delayed == 0


@pytest.mark.timeout(90)
def test_workers_are_listed_a_page_at_a_time_and_by_queue(app: App, tmp_path: Path) -> None:
    farm = Workers(app.broker_url, app.namespace, tmp_path, app_spec=_SPEC)
    try:
        started = [farm.spawn("-c", "1", "-Q", queue) for queue in ("default", "default", "q9")]
        for worker in started:
            worker.wait_for_log("serving")
        read = make_token(app, "read")
        with api_server(app, tmp_path) as server, server.client(read) as http:
            wait_until(lambda: len(http.get("/v1/workers").json()["workers"]) == 3, 15, "3 workers")
            first = http.get("/v1/workers", params={"limit": 2}).json()
            assert len(first["workers"]) == 2
            assert first["cursor"] is not None
            rest = http.get("/v1/workers", params={"limit": 2, "cursor": first["cursor"]}).json()
            assert rest["cursor"] is None
            pids = {w["pid"] for w in first["workers"] + rest["workers"]}
            assert pids == {w.pid for w in started}, "each worker once, across the pages"
            serving = http.get("/v1/workers", params={"queue": "q9"}).json()["workers"]
            assert [w["queues"] for w in serving] == [["q9"]]
            assert serving[0]["seen_at"].endswith("Z"), "times as the CLI prints them"
            with server.client() as anonymous:
                assert anonymous.get("/v1/workers").status_code == 401
    finally:
        farm.close()
