"""The README's "Look inside" commands work for an app with its own namespace, by ERRANDS_APP.

Each read command runs as written there, as text and with ``--json``, against real Redis with
jobs in it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator

import pytest

from errands import App
from errands.testing import run_jobs
from tests.e2e.env_app import ROOT, run_errands
from tests.e2e.shop_app import SPEC, build

_READS = {"queues", "workers", "status", "dead list", "schedules list", "limits"}


def _look_inside() -> tuple[str, list[list[str]]]:
    """The app the README exports, and its "Look inside" commands, as argument lists."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Look inside", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    exported, commands = "", []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            exported = words[1].partition("ERRANDS_APP=")[2]
        elif words[:1] == ["errands"]:
            commands.append(words[1:])
    return exported, commands


def _name(args: list[str]) -> str:
    return " ".join(args[:2]) if args[0] in ("dead", "schedules") else args[0]


@pytest.fixture
def shop(redis_url: str, namespace: str) -> Iterator[App]:
    app = build(redis_url, namespace)
    yield app
    app.close()


def test_the_readme_look_inside_commands_read_the_app_errands_app_names(shop: App) -> None:
    exported, commands = _look_inside()
    assert exported == "myproject.tasks:app", "the README shows how to name the app"
    reads = [c for c in commands if _name(c) in _READS]
    assert {_name(c) for c in reads} == _READS

    dead = shop.tasks["mail.send"].delay("a@b.c", subject="receipt")
    run_jobs(shop, ["emails"])
    shop.tasks["mail.digest"].delay(7)
    shop.schedules.upsert("digest", "mail.digest", cron="0 7 * * *", args=[1])
    documents = {}
    for written in reads:
        args = [dead.id if a == "JOB_ID" else a for a in written]
        for extra in ([], ["--json"]):
            # ERRANDS_APP: what the README's export says, for this test's app.
            result = run_errands(shop, SPEC, *args, *extra)
            assert result.returncode == 0, (args, result.stderr)
            assert "Traceback" not in result.stderr
        documents[_name(args)] = json.loads(result.stdout)

    assert [q["name"] for q in documents["queues"]["queues"]] == ["emails"]
    assert documents["queues"]["namespace"] == shop.namespace
    assert documents["workers"]["namespace"] == shop.namespace
    assert documents["workers"]["workers"] == [], "no worker runs in this test"
    assert documents["status"]["task"] == "mail.send"
    assert documents["status"]["kwargs"] == {"subject": "receipt"}
    assert [j["id"] for j in documents["dead list"]["jobs"]] == [dead.id]
    assert [s["id"] for s in documents["schedules list"]["schedules"]] == ["digest"]
    assert [lim["name"] for lim in documents["limits"]["limiters"]] == ["mailer"]
