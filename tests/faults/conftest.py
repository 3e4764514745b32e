"""Fixtures of the fault suite: a Redis server of each test's own, and workers on it.

Every test here is marked ``faults``. It starts its own server on a free loopback port (its
folder under the test's tmp_path), so it may kill, fill, pause or demote it; everything it
started is stopped by pid when it ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.faults.fault_app import FaultTasks, build
from tests.faults.servers import RedisServer
from tests.integration.workers import Events, Workers

FAULT_APP = "tests.faults.fault_app:app"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``faults``."""
    for item in items:
        if "tests/faults/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def namespace() -> str:
    """A key namespace of the test's own (its server is its own too)."""
    return f"errands-fault-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, stopped when it ends."""
    started = RedisServer(tmp_path / "redis").start()
    yield started
    started.stop()


@pytest.fixture
def tasks(server: RedisServer, namespace: str) -> Iterator[FaultTasks]:
    """The fault app's tasks, sending to the test's server and namespace."""
    built = build(server.url, namespace)
    yield built
    built.app.close()


@pytest.fixture
def workers(server: RedisServer, namespace: str, tmp_path: Path) -> Iterator[Workers]:
    """Starts workers of the fault app on the test's server; stops them when it ends."""
    farm = Workers(server.url, namespace, tmp_path, app_spec=FAULT_APP)
    yield farm
    farm.close()


@pytest.fixture
def events(server: RedisServer, namespace: str) -> Iterator[Events]:
    """What the test's jobs recorded."""
    recorded = Events(server.url, namespace)
    yield recorded
    recorded.close()
