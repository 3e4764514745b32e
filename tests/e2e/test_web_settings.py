"""The server's settings from `errands api`'s flags: private docs and probes, CORS origins."""

from __future__ import annotations

from pathlib import Path

from errands import App
from tests.e2e.web_support import api_server, make_token


def test_private_docs_and_probes_need_a_read_token(app: App, tmp_path: Path) -> None:
    reader = make_token(app, "read")
    publisher = make_token(app, "enqueue:*")
    flags = ("--private-docs", "--private-probes")
    with api_server(app, tmp_path, extra_args=flags) as server:
        with server.client() as anonymous:
            for path in ("/openapi.json", "/docs", "/docs/plain", "/healthz", "/readyz"):
                assert anonymous.get(path).status_code == 401, path
        with server.client(publisher) as http:
            assert http.get("/openapi.json").status_code == 403
        with server.client(reader) as http:
            assert http.get("/openapi.json").json()["openapi"].startswith("3.1")
            assert http.get("/healthz").json() == {"status": "ok"}


def test_cors_answers_only_the_origins_given(app: App, tmp_path: Path) -> None:
    reader = make_token(app, "read")
    flags = ("--cors-origin", "https://ops.example")
    asked = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    with api_server(app, tmp_path, extra_args=flags) as server, server.client(reader) as http:
        allowed = http.options("/v1/queues", headers={"Origin": "https://ops.example", **asked})
        assert allowed.headers["access-control-allow-origin"] == "https://ops.example"
        other = http.get("/v1/queues", headers={"Origin": "https://evil.example"})
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers
    with api_server(app, tmp_path) as plain, plain.client(reader) as http:
        # No origin configured: no CORS headers at all, so no other site's page reads a reply.
        reply = http.get("/v1/queues", headers={"Origin": "https://ops.example"})
        assert "access-control-allow-origin" not in reply.headers
