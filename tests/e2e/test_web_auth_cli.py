"""``errands token create|list|revoke``: the round trip an operator makes, and what it refuses.

``create`` prints the token alone on stdout (so ``$(errands token create ...)`` works), and a
token it printed works over HTTP until ``revoke``; ``list --json`` is one document with no
secret in it; unknown scopes, tasks and ids exit 1 with one line that says what is valid.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from errands import App
from errands.cli import main
from tests.e2e.env_app import environment, run_errands
from tests.e2e.web_support import api_server
from tests.integration.workers import wait_until

_SPEC = "tests.e2e.web_app:app"


def _invoke(app: App, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=environment(app, _SPEC))
    return result.exit_code, result.stdout, result.stderr


def test_a_token_created_by_the_cli_works_over_http_until_the_cli_revokes_it(
    app: App, tmp_path: Path
) -> None:
    created = run_errands(
        app, _SPEC, "token", "create", "--scope", "read", "--expires", "12h", "--note", "grafana"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n", "stdout holds the token alone"
    token_id = token.split("_")[1]
    assert token.startswith(f"erd_{token_id}_")
    assert f"created token {token_id}" in created.stderr
    assert "shown this once" in created.stderr
    with api_server(app, tmp_path) as server, server.client(token) as http:
        me = http.get("/v1/whoami")
        assert me.status_code == 200, me.text
        assert me.json()["scopes"] == ["read"]
        listed = run_errands(app, _SPEC, "token", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        document = json.loads(listed.stdout)
        assert document["namespace"] == app.namespace
        [row] = document["tokens"]
        assert row["id"] == token_id
        assert (row["scopes"], row["state"], row["note"]) == (["read"], "active", "grafana")
        assert row["expires_at"].endswith("Z")
        assert row["last_used_at"] is not None, "the request above was noted"
        assert token.split("_", 2)[2] not in listed.stdout
        assert "digest" not in listed.stdout
        code, out, err = _invoke(app, "token", "list")
        assert code == 0, err
        assert token_id in out
        assert "grafana" in out
        code, out, err = _invoke(app, "token", "revoke", token_id)
        assert code == 0, err
        assert f"revoked token {token_id}" in out
        # The API server took the token as good a moment ago: it asks Redis again once its
        # token cache (1 s) has passed.
        wait_until(lambda: http.get("/v1/whoami").status_code == 401, 3.0, "the revoke")
        code, out, err = _invoke(app, "token", "revoke", _SPEC, token_id)
        assert code == 0, err
        assert "revoked already" in out
    code, out, err = _invoke(app, "token", "list", "--json")
    assert json.loads(out)["tokens"][0]["state"] == "revoked"


def test_the_cli_refuses_unknown_scopes_tasks_durations_and_ids(app: App) -> None:
    for args, words in (
        (("--scope", "reed"), "unknown scope 'reed': the scopes are enqueue:<task>, enqueue:*"),
        (("--scope", "enqueue:nope"), "'enqueue:nope' names no task of the app"),
    ):
        code, out, err = _invoke(app, "token", "create", *args)
        assert (code, out) == (1, ""), err
        assert err.startswith("error: "), err
        assert words in err
        assert "Traceback" not in err
    code, out, err = _invoke(app, "token", "create", "--scope", "read", "--expires", "3 weeks")
    assert code == 2
    assert "write it as 30d, 12h, 15m or 90s" in err
    code, out, err = _invoke(app, "token", "revoke", "000000000000")
    assert code == 1
    assert "no token has the id '000000000000'" in err
    code, out, err = _invoke(app, "token", "list")
    assert code == 0
    assert "no tokens in namespace" in err


def test_the_cli_needs_an_app_to_check_scopes_against(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml names an app here
    result = CliRunner().invoke(
        main, ["token", "create", "--scope", "read"], env={"ERRANDS_APP": ""}
    )
    assert result.exit_code == 1
    assert "tokens belong to an app: name it" in result.stderr
