"""The API server starts, answers its probe, and refuses a request without a valid token."""

from __future__ import annotations

from pathlib import Path

from errands import App
from tests.e2e.web_support import api_server, make_token


def test_api_server_answers_healthz_and_checks_tokens(app: App, tmp_path: Path) -> None:
    token = make_token(app, "read")
    with api_server(app, tmp_path) as server, server.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert token.startswith("erd_")
