"""Fixtures shared by every test: a Redis server, and a private key namespace per test.

The server is the one on 127.0.0.1:6379 when it answers, else an embedded Valkey started for the
session on a free loopback port. ``ERRANDS_TEST_SERVER=embedded`` forces the embedded one,
``ERRANDS_TEST_SERVER=redis://...`` names another. Tests never FLUSHALL: each gets its own
namespace and its keys are deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from errands import App
from errands.broker.redis import RedisBroker
from errands.embedded import EmbeddedServer, redis_answers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the Redis server, so ``-m redis`` selects them."""
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the Redis server the tests use."""
    choice = os.environ.get("ERRANDS_TEST_SERVER", "auto")
    if choice.startswith(("redis://", "rediss://", "unix://")):
        yield choice
        return
    if choice in ("auto", "system") and redis_answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    if choice == "system":
        pytest.fail("ERRANDS_TEST_SERVER=system but nothing answers on 127.0.0.1:6379")
    log_dir: Path = tmp_path_factory.mktemp("valkey")
    with EmbeddedServer(log_dir) as server:
        yield server.url


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A key namespace of this test's own; its keys are deleted when the test ends."""
    name = f"errands-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in (f"{name}:*",):
            batch = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterator[RedisBroker]:
    """A Redis broker in the test's namespace."""
    b = RedisBroker(redis_url, namespace=namespace)
    yield b
    b.close()


@pytest.fixture
def app(redis_url: str, namespace: str) -> Iterator[App]:
    """An app on the test server, in the test's namespace."""
    application = App(redis_url, namespace=namespace)
    yield application
    application.close()
