"""``errands limits APP`` on real Redis: each limiter's rate, tokens, running and waiting jobs."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from errands import App
from errands.cli import main
from tests.e2e.limits_app import build

APP = "tests.e2e.limits_app:app"


def _limits(url: str, namespace: str, *args: str) -> tuple[int, str]:
    env = {"ERRANDS_BROKER_URL": url, "ERRANDS_TEST_NAMESPACE": namespace}
    result = CliRunner().invoke(main, ["limits", APP, *args], env=env)
    return result.exit_code, result.output


def _fetch_all(app: App) -> int:
    async def fetch() -> int:
        try:
            return len((await app.broker.fetch("default", 50, 60_000, "w1")).jobs)
        finally:
            await app.broker.aclose()

    return asyncio.run(fetch())


def test_limits_shows_tokens_running_and_waiting_jobs(redis_url: str, namespace: str) -> None:
    app = build(redis_url, namespace)
    try:
        for n in range(8):
            app.tasks["sync"].delay(n)
        for tenant in ("acme", "acme", "globex"):
            app.tasks["bill"].delay(tenant)
        assert _fetch_all(app) == 4, "2 of sync (its burst), one per tenant of bill"
        code, output = _limits(redis_url, namespace)
        assert code == 0, output
        assert "10/s (burst 2), at most 3 at once" in output
        partner = next(line for line in output.splitlines() if "partner" in line)
        assert "0/2" in partner, "its burst is spent"
        assert "2/3" in partner, "two running of three"
        assert "│ 6 " in partner, "six wait for the slots booked for them"
        code, output = _limits(redis_url, namespace, "--json")
        assert code == 0, output
        document = json.loads(output)
        assert document["namespace"] == namespace
        states = {s["name"]: s for s in document["limiters"]}
        assert states["partner"]["keys"][0]["booked"] == 6
        tenants = {k["key"]: k for k in states["per-tenant"]["keys"]}
        assert set(tenants) == {"acme", "globex"}
        assert tenants["acme"]["booked"] == 1, "the second acme job waits a minute"
        assert tenants["globex"]["booked"] == 0
    finally:
        app.close()


def test_limits_of_an_unreachable_redis_is_one_clear_line(namespace: str) -> None:
    code, output = _limits("redis://127.0.0.1:1/0", namespace)
    assert code == 1
    assert output.startswith("error: "), output
    assert "Traceback" not in output
