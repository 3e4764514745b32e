"""A worker started before Redis waits for it; one pointed at the wrong server stops in one line.

Under Compose or Kubernetes a worker often starts before its Redis: it must wait (logging every
few seconds), not crash-loop. A server that is not Redis, or one that refuses our credentials,
will not get better by waiting: the worker exits 1 with one clear line, never a traceback. A
producer gets the same errands errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.faults.conftest import FAULT_APP
from tests.faults.fault_app import build
from tests.faults.servers import NotRedis, RedisServer
from tests.integration.workers import Workers, free_port

from errands import App, BrokerError, BrokerUnavailable


@pytest.mark.timeout(60)
def test_a_worker_started_before_redis_waits_for_it_then_serves(
    tmp_path: Path, namespace: str
) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    farm = Workers(url, namespace, tmp_path, app_spec=FAULT_APP)
    server = RedisServer(tmp_path / "late", port=port)
    tasks = build(url, namespace)
    try:
        worker = farm.spawn("-c", "1")
        worker.wait_for_log("waits for Redis")
        assert worker.running()
        assert "Traceback" not in worker.log()
        server.start()
        worker.wait_for_log("answers again")
        worker.wait_for_log("serving")
        assert tasks.add.delay(2, 3).get(timeout=15) == 5
    finally:
        farm.close()
        tasks.app.close()
        server.stop()


@pytest.mark.timeout(30)
def test_a_worker_pointed_at_a_server_that_is_not_redis_exits_1_in_one_line(
    tmp_path: Path, namespace: str
) -> None:
    impostor = NotRedis()
    farm = Workers(impostor.url, namespace, tmp_path, app_spec=FAULT_APP)
    try:
        worker = farm.spawn("-c", "1")
        assert worker.wait(20) == 1
        log = worker.log()
        assert "does not speak the Redis protocol" in log
        assert "check the host and port" in log
        assert "Traceback" not in log
    finally:
        farm.close()
        impostor.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("credentials", ["", "default:wrong@"], ids=["none", "wrong"])
def test_a_worker_refused_by_redis_auth_exits_1_in_one_line(
    tmp_path: Path, namespace: str, credentials: str
) -> None:
    server = RedisServer(tmp_path / "auth", settings=("--requirepass", "secret")).start()
    url = f"redis://{credentials}127.0.0.1:{server.port}/0"
    farm = Workers(url, namespace, tmp_path, app_spec=FAULT_APP)
    try:
        worker = farm.spawn("-c", "1")
        assert worker.wait(20) == 1
        log = worker.log()
        assert "refused errands" in log
        assert "give the right user and password" in log
        assert "wrong" not in log.split("refused errands")[0]  # the password is not shown
        assert "Traceback" not in log
    finally:
        farm.close()
        server.stop()


def test_a_producer_gets_an_errands_error_for_every_kind_of_broken_server(
    tmp_path: Path,
) -> None:
    impostor = NotRedis()
    locked = RedisServer(tmp_path / "locked", settings=("--requirepass", "secret")).start()
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    try:
        for url, error, says in [
            (nowhere, BrokerUnavailable, "cannot reach Redis"),
            (impostor.url, BrokerError, "does not speak the Redis protocol"),
            (locked.url, BrokerError, "refused errands"),
        ]:
            app = App(url)

            @app.task
            def noop() -> None: ...

            with pytest.raises(error, match=says):
                noop.delay()
            with pytest.raises(error, match=says):
                app.inspector.queue("default")
            app.close()
    finally:
        impostor.close()
        locked.stop()
