"""A job that reports progress while Redis refuses the writes, or is down, still succeeds.

Progress is best effort: the worker drops the reports it cannot write (and says so in its log),
and the job never waits for them. The task (`fault_app.reporting`) reports every 10 ms until the
test creates a file, and returns how long its slowest report took.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.faults.fault_app import FaultTasks, build
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers, stop_cleanly, wait_until

_SLOW_S = 0.25  # a report may never take this long: it is a pipe write, never a Redis call


@pytest.mark.timeout(60)
def test_a_job_reporting_progress_while_redis_is_full_still_succeeds(
    server: RedisServer, tasks: FaultTasks, workers: Workers, tmp_path: Path
) -> None:
    worker = workers.start("-c", "1")
    done = tmp_path / "done"
    handle = tasks.reporting.delay(str(done))
    wait_until(lambda: handle.progress is not None, 10, "the first report to reach Redis")
    server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
    try:
        worker.wait_for_log("could not be written")  # OOM: refused, nothing written
        assert handle.progress is not None  # the last report that got in, read (read-only)
        done.touch()
        result = handle.get(timeout=20)  # the ack drains (allow-oom) and stores the result
        assert handle.progress is None  # and deleted what progress there was
    finally:
        server.command("CONFIG", "SET", "maxmemory", "0")
    assert result["reports"] > 0
    assert result["slowest_s"] < _SLOW_S, result
    assert "maxmemory" in worker.log() or "OOM" in worker.log()
    stop_cleanly(worker)


@pytest.mark.timeout(90)
def test_a_job_reporting_progress_while_redis_is_down_still_succeeds(
    tmp_path: Path, namespace: str
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    tasks = build(server.url, namespace)
    farm = Workers(server.url, namespace, tmp_path, app_spec="tests.faults.fault_app:app")
    done = tmp_path / "done"
    try:
        worker = farm.start("-c", "1", "--lease", "10", env={"ERRANDS_TEST_LEASE": "10"})
        handle = tasks.reporting.delay(str(done))
        wait_until(lambda: handle.progress is not None, 10, "the first report to reach Redis")
        server.stop()  # SIGTERM: its append-only file has every write (fsync always)
        worker.wait_for_log("could not be written")
        done.touch()  # the job ends while Redis is down: its ack waits for Redis
        worker.wait_for_log("retrying with backoff")
        server.start()
        result = handle.get(timeout=30)
        assert result["reports"] > 0
        assert result["slowest_s"] < _SLOW_S, result
        assert handle.progress is None
        stop_cleanly(worker)
    finally:
        tasks.app.close()
        farm.close()
        server.stop()
