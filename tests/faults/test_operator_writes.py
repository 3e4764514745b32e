"""The operator's commands against a Redis that refuses writes: one clear line, exit 1, and
nothing half done.

A replica answers every write with READONLY (a failover under way); a full ``maxmemory``
refuses what adds data (OOM) but still takes what frees it: a purge and a cancel go through,
a pause does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer

from errands.cli import main


def _invoke(url: str, namespace: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--broker-url", url, "--namespace", namespace])
    return result.exit_code, result.output


def _one_error_line(out: str) -> str:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("error: "), out
    assert "Traceback" not in out
    return lines[0]


@pytest.fixture
def replica(tmp_path: Path, server: RedisServer) -> Iterator[RedisServer]:
    """A replica of the test's server, in sync: it has the jobs and refuses every write."""
    started = RedisServer(tmp_path / "replica").start()
    yield started
    started.stop()


@pytest.mark.timeout(60)
def test_purge_pause_and_cancel_on_a_replica_say_readonly_and_change_nothing(
    server: RedisServer, replica: RedisServer, tasks: FaultTasks, namespace: str
) -> None:
    jobs = [tasks.add.delay(i, i) for i in range(3)]
    replica.replica_of(server)
    replica.wait_in_sync()
    for args in (
        ("purge", "default", "--yes"),
        ("pause", "default"),
        ("cancel", jobs[0].id),
    ):
        code, out = _invoke(replica.url, namespace, *args)
        assert code == 1, (args, out)
        line = _one_error_line(out)
        assert "READONLY" in line or "replica" in line, line
    summary = tasks.app.inspector.queue("default")
    assert (summary.ready, summary.paused) == (3, False), summary
    assert jobs[0].state == "queued"


@pytest.mark.timeout(60)
def test_a_full_redis_refuses_a_pause_but_takes_a_purge_and_a_cancel(
    server: RedisServer, tasks: FaultTasks, namespace: str
) -> None:
    jobs = [tasks.add.delay(i, i) for i in range(3)]
    tasks.app.inspector.queues()
    server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
    try:
        code, out = _invoke(server.url, namespace, "pause", "default")
        assert code == 1
        assert "maxmemory" in _one_error_line(out)
        code, out = _invoke(server.url, namespace, "cancel", jobs[0].id)
        assert code == 0, out
        code, out = _invoke(server.url, namespace, "purge", "default", "--yes")
        assert code == 0, out
        assert "2 ready job(s) deleted" in out
    finally:
        server.command("CONFIG", "SET", "maxmemory", "0")
    summary = tasks.app.inspector.queue("default")
    assert (summary.ready, summary.paused) == (0, False), summary
