"""The dead-job routes over real HTTP: list (filters, paging, arguments only for
``read:payloads``), retry by ids and by filter (a job that then succeeds under a real worker),
the retry budget's 429, and delete (admin only).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from errands import App
from errands.conformance.jobs import fail
from errands.web.dead import RETRY_PER_MINUTE, RETRY_PER_REQUEST
from tests.e2e.web_support import api_server, make_token
from tests.integration.workers import Workers, wait_until

_SPEC = "tests.e2e.web_app:app"
#: The names the tasks of `tests.e2e.web_app` are registered under.
_TASK = "tests.e2e.web_app.build.<locals>.{}"


def _kill(app: App, task: str, args: list[object], count: int, queue: str = "default") -> list[str]:
    """Send `count` jobs of `task`, lease them as a worker would and fail them for good.

    Their records are the real ones: retried, a real worker runs them.
    """
    name = _TASK.format(task)
    sent = [app.send_task(name, args=args, queue=queue).id for _ in range(count)]

    async def die() -> None:
        try:
            taken = (await app.broker.fetch(queue, count, 60_000, "test-killer")).jobs
            assert sorted(d.id for d in taken) == sorted(sent)
            await app.broker.ack(queue, [fail(d) for d in taken])
        finally:
            await app.broker.aclose()

    asyncio.run(die())
    return sent


def test_dead_jobs_page_with_filters_and_show_arguments_only_with_read_payloads(
    app: App, tmp_path: Path
) -> None:
    greeted = _kill(app, "greet", ["ada"], 3)
    added = _kill(app, "add", [1, 2], 2)
    read, payloads = make_token(app, "read"), make_token(app, "read", "read:payloads")
    with api_server(app, tmp_path) as server:
        with server.client(read) as http:
            seen, cursor = [], None
            while True:
                params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
                page = http.get("/v1/dead", params=params).json()
                seen += page["jobs"]
                cursor = page["cursor"]
                if cursor is None:
                    break
            ids = [j["id"] for j in seen]
            assert sorted(ids) == sorted(greeted + added), "every dead job once, across pages"
            assert [j["died_at"] for j in seen] == sorted(j["died_at"] for j in seen)
            first = seen[0]
            assert first["error"] == {"type": "KeyError", "message": "for good"}
            assert first["died_at"].endswith("Z")
            assert first["args"] is None, "a read token sees no arguments"
            assert first["kwargs"] is None
            only = http.get("/v1/dead", params={"task": _TASK.format("add")}).json()["jobs"]
            assert sorted(j["id"] for j in only) == sorted(added)
            none = http.get("/v1/dead", params={"error_type": "ValueError"}).json()
            assert none == {"queue": "default", "jobs": [], "cursor": None}
            newest = http.get("/v1/dead", params={"newest_first": "true", "limit": 1}).json()
            assert newest["jobs"][0]["id"] in added
            wrong = http.get("/v1/dead", params={"cursor": "garbage"})
            assert wrong.status_code == 422
            assert "cursor" in wrong.json()["detail"][0]["message"]
        with server.client(payloads) as http:
            shown = http.get("/v1/dead", params={"task": _TASK.format("greet"), "limit": 1}).json()[
                "jobs"
            ]
            assert shown[0]["args"] == ["ada"], "read:payloads shows the arguments"
            assert shown[0]["kwargs"] == {}


@pytest.mark.timeout(90)
def test_a_dead_job_retried_by_id_succeeds_under_a_running_worker(app: App, tmp_path: Path) -> None:
    [job_id] = _kill(app, "greet", ["grace"], 1)
    operate, read = make_token(app, "operate"), make_token(app, "read")
    farm = Workers(app.broker_url, app.namespace, tmp_path, app_spec=_SPEC)
    try:
        farm.start("-c", "1")
        with api_server(app, tmp_path) as server:
            with server.client(read) as reader:
                refused = reader.post("/v1/dead/retry", json={"queue": "default", "ids": [job_id]})
                assert refused.status_code == 403, "a read token cannot retry"
            with server.client(operate) as http:
                reply = http.post(
                    "/v1/dead/retry", json={"queue": "default", "ids": [job_id, "nope"]}
                )
                assert reply.status_code == 200, reply.text
                body = reply.json()
                assert (body["retried"], body["not_dead"]) == ([job_id], ["nope"])
                assert body["budget_left"] == RETRY_PER_MINUTE - 2
        wait_until(
            lambda: app.result(job_id).state.value == "succeeded", 15, "the retried job succeeds"
        )
        assert app.result(job_id).get(timeout=1) == "hello grace!"
    finally:
        farm.close()


def test_retry_by_filter_moves_only_the_matching_jobs_and_wrong_bodies_are_422(
    app: App, tmp_path: Path
) -> None:
    greeted = _kill(app, "greet", ["ada"], 3)
    added = _kill(app, "add", [1, 2], 2)
    operate = make_token(app, "operate")
    with api_server(app, tmp_path) as server, server.client(operate) as http:
        body = {"queue": "default", "filter": {"task": _TASK.format("greet")}, "limit": 2}
        moved = http.post("/v1/dead/retry", json=body).json()["retried"]
        assert len(moved) == 2
        assert set(moved) <= set(greeted), "only jobs that match, the oldest first"
        left = {j.id for j in app.inspector.dead("default").items}
        assert left == {*added, *(set(greeted) - set(moved))}
        for wrong in (
            {"queue": "default"},
            {"queue": "default", "ids": ["a"], "filter": {}},
            {"queue": "default", "ids": []},
            {"queue": "default", "ids": [f"j{i}" for i in range(RETRY_PER_REQUEST + 1)]},
            {"queue": "default", "filter": {}, "limit": RETRY_PER_REQUEST + 1},
            {"queue": "bad queue!", "ids": ["a"]},
        ):
            reply = http.post("/v1/dead/retry", json=wrong)
            assert reply.status_code == 422, (wrong, reply.text)
            assert reply.json()["detail"]


def test_the_retry_budget_of_a_token_gives_429_with_retry_after(app: App, tmp_path: Path) -> None:
    operate, other = make_token(app, "operate"), make_token(app, "operate")
    ids = [f"missing-{i}" for i in range(RETRY_PER_REQUEST)]
    body = {"queue": "default", "ids": ids}
    with api_server(app, tmp_path) as server:
        with server.client(operate) as http:
            for _ in range(RETRY_PER_MINUTE // RETRY_PER_REQUEST):
                assert http.post("/v1/dead/retry", json=body).status_code == 200
            refused = http.post("/v1/dead/retry", json={"queue": "default", "ids": ["x"]})
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert "has 0 left" in refused.json()["detail"]
        with server.client(other) as http:
            assert http.post("/v1/dead/retry", json=body).status_code == 200, "per token"


def test_deleting_a_dead_job_needs_admin_and_an_unknown_one_is_404(
    app: App, tmp_path: Path
) -> None:
    [job_id] = _kill(app, "add", [1, 1], 1)
    operate, admin = make_token(app, "operate"), make_token(app, "admin")
    with api_server(app, tmp_path) as server:
        with server.client(operate) as http:
            assert http.delete(f"/v1/dead/{job_id}").status_code == 403
        with server.client(admin) as http:
            reply = http.delete(f"/v1/dead/{job_id}", params={"queue": "default"})
            assert reply.json() == {"queue": "default", "id": job_id, "deleted": True}
            assert job_id not in {j.id for j in app.inspector.dead("default").items}
            gone = app.inspector.job("default", job_id)
            assert gone is None or gone.args is None, "its record is gone (its outcome may stay)"
            again = http.delete(f"/v1/dead/{job_id}")
            assert again.status_code == 404
            assert "GET /v1/dead" in again.json()["detail"]
