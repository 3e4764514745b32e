"""The token check on a bad day: Redis stopped, or full. Never a 500, never a request let in.

Each test runs its own ``redis-server`` and an ``errands api`` process on it, and stops both by
pid. Stopped: every request with a token gets 503 with a detail that says to retry, and the
server logs why; once Redis is back the same token works again. Full (maxmemory): a good token
still works (the check only reads) and a bad one still gets 401 (its count is allowed in).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.web_support import api_server, make_token
from tests.faults.servers import RedisServer

from errands import App


@pytest.mark.timeout(90)
def test_a_stopped_redis_gets_503_not_500_and_the_token_works_again_once_it_is_back(
    tmp_path: Path, namespace: str
) -> None:
    redis_server = RedisServer(tmp_path / "redis", appendonly=True).start()
    app = App(redis_server.url, namespace=namespace)
    try:
        admin = make_token(app, "admin")
        # No token cache: every request asks Redis, as the first after a second would.
        uncached = ("--token-cache", "0")
        with api_server(app, tmp_path, extra_args=uncached) as server, server.client(admin) as http:
            assert http.get("/v1/whoami").status_code == 200
            redis_server.stop()
            for path in ("/v1/whoami", "/v1/tokens"):
                down = http.get(path)
                assert down.status_code == 503, down.text
                assert "cannot be checked now" in down.json()["detail"]
                assert "retry later" in down.json()["detail"]
                assert down.headers["retry-after"] == "5"
            bad = http.get("/v1/whoami", headers={"Authorization": "Bearer erd_0_x"})
            assert bad.status_code == 503, "a token that cannot be checked is never judged"
            redis_server.start()
            assert http.get("/v1/whoami").status_code == 200
            log = server.log.read_text()
            assert "cannot check a token from 127.0.0.1: cannot reach Redis" in log
            assert "Traceback" not in log
    finally:
        app.close()
        redis_server.stop()


@pytest.mark.timeout(60)
def test_a_full_redis_still_checks_tokens_and_refuses_new_ones_with_503(
    server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    app = App(server.url, namespace=namespace)
    try:
        admin = make_token(app, "admin")
        with api_server(app, tmp_path) as api, api.client(admin) as http:
            assert http.get("/v1/whoami").status_code == 200
            server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
            try:
                assert http.get("/v1/whoami").status_code == 200
                bad = http.get("/v1/whoami", headers={"Authorization": "Bearer erd_0_x"})
                assert bad.status_code == 401, bad.text
                full = http.post("/v1/tokens", json={"scopes": ["read"]})
                assert full.status_code == 503, full.text
                assert "Redis is full" in full.json()["detail"]
            finally:
                server.command("CONFIG", "SET", "maxmemory", "0")
            assert http.post("/v1/tokens", json={"scopes": ["read"]}).status_code == 201
            assert "Traceback" not in api.log.read_text()
    finally:
        app.close()
