"""Every way a request's token is refused, over real HTTP against real ``errands api`` processes.

401 without a valid token (none, malformed, wrong, unknown, revoked, expired, corrupt), 403
without the scope, 429 after repeated failures from one address (shared by every API process),
and token management under ``admin``. The client address is set with ``X-Forwarded-For``,
which uvicorn takes from a loopback peer, so a test can speak from several addresses.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import redis

from errands import App
from errands.web.tokens import BLOCK_AFTER, FAILURE_WINDOW_S
from tests.e2e import web_app
from tests.e2e.web_support import api_server, make_token
from tests.integration.workers import wait_until


def _from(address: str, token: str | None = None) -> dict[str, str]:
    """Headers that make a request come from `address`, with `token` when given."""
    headers = {"X-Forwarded-For": address}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _refused(reply: httpx.Response, status: int, words: str) -> None:
    assert reply.status_code == status, reply.text
    assert words in reply.json()["detail"], reply.json()


def test_a_request_without_a_valid_token_gets_401_and_without_the_scope_403(
    app: App, tmp_path: Path
) -> None:
    reader = make_token(app, "read")
    publisher = make_token(app, "enqueue:*")
    add = next(name for name in web_app.build(app.broker_url, app.namespace).tasks if "add" in name)
    one_task = make_token(app, f"enqueue:{add}")
    with api_server(app, tmp_path) as server, server.client() as http:
        nobody = http.get("/v1/whoami", headers=_from("10.0.0.1"))
        _refused(nobody, 401, "no bearer token")
        assert nobody.headers["www-authenticate"] == "Bearer"
        malformed = http.get("/v1/whoami", headers=_from("10.0.0.1", "hunter2"))
        _refused(malformed, 401, "malformed")
        assert 'error="invalid_token"' in malformed.headers["www-authenticate"]
        wrong = reader[:-4] + ("AAAA" if not reader.endswith("AAAA") else "BBBB")
        _refused(http.get("/v1/whoami", headers=_from("10.0.0.1", wrong)), 401, "unknown or wrong")
        unknown = "erd_000000000000_" + reader.split("_", 2)[2]
        _refused(http.get("/v1/whoami", headers=_from("10.0.0.1", unknown)), 401, "unknown")
        # The same detail for an unknown id and a wrong secret: which ids exist is not said.
        assert (
            http.get("/v1/whoami", headers=_from("10.0.0.2", unknown)).json()
            == http.get("/v1/whoami", headers=_from("10.0.0.2", wrong)).json()
        )
        for token in (reader, publisher, one_task):
            for method, path in (
                ("GET", "/v1/tokens"),
                ("POST", "/v1/tokens"),
                ("DELETE", "/v1/tokens/000000000000"),
            ):
                reply = http.request(method, path, headers=_from("10.0.0.3", token), json={})
                _refused(reply, 403, "lacks the scope 'admin'")
        me = http.get("/v1/whoami", headers=_from("10.0.0.3", one_task))
        assert me.status_code == 200, me.text
        assert me.json()["scopes"] == [f"enqueue:{add}"]
        assert me.json()["state"] == "active"
        assert me.json()["expires_at"] is None
        assert "token" not in me.json()
        assert "digest" not in me.text


def test_a_revoked_token_is_refused_at_once_by_every_api_process_without_a_token_cache(
    app: App, tmp_path: Path
) -> None:
    admin = make_token(app, "admin")
    reader = make_token(app, "read", note="to revoke")
    reader_id = reader.split("_")[1]
    uncached = ("--token-cache", "0")
    with (
        api_server(app, tmp_path, extra_args=uncached) as first,
        api_server(app, tmp_path, extra_args=uncached) as second,
        first.client(admin) as on_first,
        second.client(reader) as on_second,
    ):
        assert on_second.get("/v1/whoami").status_code == 200
        revoked = on_first.delete(f"/v1/tokens/{reader_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["state"] == "revoked"
        assert revoked.json()["revoked_at"] is not None
        _refused(on_second.get("/v1/whoami"), 401, "revoked")
        again = on_first.delete(f"/v1/tokens/{reader_id}")
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
        _refused(on_first.delete("/v1/tokens/000000000000"), 404, "no token has the id")
        listed = {t["id"]: t for t in on_first.get("/v1/tokens").json()["tokens"]}
        assert listed[reader_id]["state"] == "revoked"
        assert listed[reader_id]["note"] == "to revoke"


def test_with_the_default_cache_a_revoke_is_at_once_where_made_and_within_a_second_elsewhere(
    app: App, tmp_path: Path
) -> None:
    admin = make_token(app, "admin")
    reader = make_token(app, "read")
    with (
        api_server(app, tmp_path) as first,
        api_server(app, tmp_path) as second,
        first.client(admin) as as_admin,
        first.client(reader) as on_first,
        second.client(reader) as on_second,
    ):
        assert on_first.get("/v1/whoami").status_code == 200
        assert on_second.get("/v1/whoami").status_code == 200  # now in both caches
        assert as_admin.delete(f"/v1/tokens/{reader.split('_')[1]}").status_code == 200
        _refused(on_first.get("/v1/whoami"), 401, "revoked")  # the revoking process forgot it
        # The other process asks Redis again once its cache entry (1 s) has passed.
        wait_until(
            lambda: on_second.get("/v1/whoami").status_code == 401, 3.0, "the revoke elsewhere"
        )


def test_an_expired_token_is_refused(app: App, tmp_path: Path) -> None:
    with api_server(app, tmp_path) as server, server.client() as http:
        short = make_token(app, "read", expires_in_s=1.5)
        http.headers["Authorization"] = f"Bearer {short}"
        me = http.get("/v1/whoami")
        assert me.status_code == 200, me.text
        assert me.json()["expires_at"] is not None
        wait_until(lambda: http.get("/v1/whoami").status_code != 200, 10, "the token to expire")
        _refused(http.get("/v1/whoami"), 401, "expired")


def test_an_address_that_sent_too_many_bad_tokens_gets_429_on_every_api_process(
    app: App, tmp_path: Path
) -> None:
    good = make_token(app, "read")
    bad = "erd_000000000000_" + "x" * 43
    uncached = ("--token-cache", "0")  # a good token checked a moment ago would pass 1 s more
    with (
        api_server(app, tmp_path, extra_args=uncached) as first,
        api_server(app, tmp_path, extra_args=uncached) as second,
        first.client() as on_first,
        second.client() as on_second,
    ):
        # Good tokens do not count, however many.
        for _ in range(BLOCK_AFTER + 2):
            assert on_first.get("/v1/whoami", headers=_from("10.1.0.1", good)).status_code == 200
        for attempt in range(BLOCK_AFTER):
            served = on_first if attempt % 2 == 0 else on_second
            assert served.get("/v1/whoami", headers=_from("10.1.0.1", bad)).status_code == 401
        for served in (on_first, on_second):
            blocked = served.get("/v1/whoami", headers=_from("10.1.0.1", good))
            _refused(blocked, 429, "too many bad tokens")
            assert 1 <= int(blocked.headers["retry-after"]) <= FAILURE_WINDOW_S
        # Another address is not blocked.
        assert on_second.get("/v1/whoami", headers=_from("10.1.0.2", good)).status_code == 200
        assert f"sent {BLOCK_AFTER} bad tokens" in first.log.read_text() + second.log.read_text()


def test_admins_create_list_and_revoke_tokens_over_http(app: App, tmp_path: Path) -> None:
    admin = make_token(app, "admin")
    with api_server(app, tmp_path) as server, server.client(admin) as http:
        created = http.post(
            "/v1/tokens", json={"scopes": ["read", "operate"], "expires_in_s": 3600, "note": "ci"}
        )
        assert created.status_code == 201, created.text
        document = created.json()
        assert document["scopes"] == ["read", "operate"]
        assert document["token"].startswith(f"erd_{document['id']}_")
        assert created.headers["location"] == f"/v1/tokens/{document['id']}"
        with server.client(document["token"]) as fresh:
            assert fresh.get("/v1/whoami").json()["id"] == document["id"]
        listed = http.get("/v1/tokens")
        assert listed.status_code == 200
        assert document["id"] in {t["id"] for t in listed.json()["tokens"]}
        assert document["token"].split("_", 2)[2] not in listed.text
        assert "digest" not in listed.text
        assert http.get(f"/v1/tokens/{document['id']}").json()["note"] == "ci"
        _refused(http.get("/v1/tokens/000000000000"), 404, "no token has the id")
        for scopes, words in (
            (["reed"], "unknown scope 'reed'"),
            (["enqueue:nope"], "names no task of the app"),
        ):
            refused = http.post("/v1/tokens", json={"scopes": scopes})
            assert refused.status_code == 422, refused.text
            assert words in refused.json()["detail"][0]["message"]
        assert http.post("/v1/tokens", json={"scopes": []}).status_code == 422
        assert (
            http.post("/v1/tokens", json={"scopes": ["read"], "expires_in_s": 0}).status_code == 422
        )
        spec = http.get("/openapi.json").json()
        create = spec["paths"]["/v1/tokens"]["post"]
        assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/CreatedToken"
        }
        assert {"400", "401", "403", "409", "422", "429", "503"} <= set(create["responses"])
        assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
        assert spec["paths"]["/v1/whoami"]["get"]["security"] == [{"token": []}]


def test_a_corrupt_token_record_gets_401_and_a_log_line(app: App, tmp_path: Path) -> None:
    token = make_token(app, "read")
    token_id = token.split("_")[1]
    client = redis.Redis.from_url(app.broker_url)
    try:
        client.hset(f"{app.namespace}:{{web:tokens}}:tokens", token_id, b"\xff not json")
    finally:
        client.close()
    with api_server(app, tmp_path) as server, server.client(token) as http:
        _refused(http.get("/v1/whoami"), 401, "cannot be read")
        wait_until(lambda: "does not decode" in server.log.read_text(), 5, "the log line")
        assert f"the record of token {token_id} does not decode" in server.log.read_text()
        assert "Traceback" not in server.log.read_text()
