"""Fixtures of the tests that run real workers: their tasks, the workers, what jobs recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.worker_app import Tasks, build
from tests.integration.workers import Events, Workers


@pytest.fixture
def tasks(redis_url: str, namespace: str) -> Iterator[Tasks]:
    """The tasks of `worker_app`, sending jobs to the test's namespace."""
    built = build(redis_url, namespace)
    yield built
    built.app.close()


@pytest.fixture
def workers(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Workers]:
    """Starts workers for the test; stops the ones still running when it ends."""
    farm = Workers(redis_url, namespace, tmp_path)
    yield farm
    farm.close()


@pytest.fixture
def events(redis_url: str, namespace: str) -> Iterator[Events]:
    """What the test's jobs recorded."""
    recorded = Events(redis_url, namespace)
    yield recorded
    recorded.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain Redis client, to open the gates `gate` jobs wait for."""
    plain = redis.Redis.from_url(redis_url)
    yield plain
    plain.close()
