"""Alerts when Redis fails under the evaluator: no crash, no storm, one log line, then on.

The evaluator has an open incident (its trigger sent) when its Redis is killed, or turned into a
replica that refuses writes (READONLY). It logs the failure once, however many steps fail, sends
nothing meanwhile, and once Redis is back resolves the same incident: one trigger, one resolve.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from tests.faults.servers import RedisServer
from tests.integration.observe_app import alerting_app, kill_jobs, until
from tests.integration.receiver import Receiver
from tests.integration.workers import free_port

from errands.observe.alerts import AlertEvaluator

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("fault", ["unreachable", "readonly"])
def test_a_failing_redis_makes_one_log_line_and_no_second_trigger(
    fault: str, tmp_path: Path, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    receiver = Receiver()
    caplog.set_level(logging.INFO, logger="errands.alerts")

    async def scenario() -> None:
        app = alerting_app(server.url, namespace, receiver.url, 1.5)
        evaluator = AlertEvaluator(app, owner="only", lease_s=10.0, renew_s=0.2)
        stopping = asyncio.Event()
        running = asyncio.create_task(evaluator.run(stopping))
        await until(lambda: evaluator.evaluations >= 1, 10, "the evaluator's baseline")
        await kill_jobs(app, 4)
        await asyncio.to_thread(receiver.wait_for, 1)
        if fault == "unreachable":
            server.kill()
        else:
            server.command("REPLICAOF", "127.0.0.1", free_port())  # never answers: READONLY
        await until(lambda: evaluator.failed_steps >= 5, 20, "several failed steps")
        assert not running.done()
        assert len(receiver.posts) == 1
        if fault == "unreachable":
            server.start()
        else:
            server.replica_of(None)
        await asyncio.to_thread(receiver.wait_for, 2)
        stopping.set()
        await running
        await app.broker.aclose()

    try:
        asyncio.run(scenario())
    finally:
        receiver.close()
        server.stop()
    assert [p["event"] for p in receiver.posts] == ["trigger", "resolve"]
    assert receiver.posts[0]["dedup_key"] == receiver.posts[1]["dedup_key"]
    failures = [r for r in caplog.records if "alert evaluation failed" in r.getMessage()]
    assert len(failures) == 1
    assert any("alert evaluation works again" in r.getMessage() for r in caplog.records)
