"""The dashboard's session checks that need no server: the CSRF token, `next`, the Origin."""

from __future__ import annotations

from starlette.requests import Request

from errands.web.dashboard.session import csrf_token, local_path, same_origin


def _request(**headers: str) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


def test_the_csrf_token_is_bound_to_its_session_token() -> None:
    mine = csrf_token("erd_aaaaaaaaaaaa_secret-one")
    assert mine == csrf_token("erd_aaaaaaaaaaaa_secret-one")
    assert mine != csrf_token("erd_aaaaaaaaaaaa_secret-two")
    assert len(mine) == 64
    assert "secret-one" not in mine


def test_next_stays_on_this_server() -> None:
    assert local_path("/queues/default?after=x") == "/queues/default?after=x"
    for away in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "queues", None):
        assert local_path(away) == "/"


def test_a_post_from_another_origin_is_told_apart() -> None:
    assert same_origin(_request(host="dash.example:8080"))  # no Origin: the CSRF token guards
    assert same_origin(_request(host="dash.example:8080", origin="https://dash.example:8080"))
    assert not same_origin(_request(host="dash.example:8080", origin="https://evil.example"))
    assert not same_origin(_request(host="dash.example:8080", origin="null"))
