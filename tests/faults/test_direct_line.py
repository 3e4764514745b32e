"""A worker child's own line to Redis (`RedisBroker.direct_line`), on servers of the test's own.

The line is a socket errands opens and reads itself (hiredis), not a redis-py connection, so
what redis-py would do for it is shown here: logging in and choosing the database of the URL, a
job leased and settled on it, a wait cut short by the watched pipe, a server that lost the
library, a replica, a wrong password, a server that dies during the wait, and TLS, for which
no line is offered.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import pytest
import redis
from tests.faults.servers import RedisServer

from errands import App, JobState
from errands.broker.redis import RedisBroker
from errands.broker.transport import DirectLine, DirectWaits
from errands.broker.types import AckCode, Outcome
from errands.errors import BrokerError, BrokerUnavailable
from errands.result import OutcomeRecord

LEASE_MS = 30_000


def _app(url: str, namespace: str) -> App:
    app = App(url, namespace=namespace)

    @app.task(name="maths.add")
    def add(a: int, b: int) -> int:
        return a + b

    return app


@contextmanager
def _pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    try:
        yield read_fd, write_fd
    finally:
        os.close(read_fd)
        os.close(write_fd)


def _broker(app: App) -> RedisBroker:
    broker = app.broker
    assert isinstance(broker, RedisBroker)
    return broker


@contextmanager
def _line(url: str, namespace: str, worker_id: str) -> Iterator[tuple[App, DirectLine]]:
    """An app on `url` and a direct line of one child of `worker_id`, both closed at the end."""
    app = _app(url, namespace)
    line = _broker(app).direct_line("default", LEASE_MS, worker_id)
    assert line is not None
    try:
        yield app, line
    finally:
        line.close()
        app.close()


def test_a_line_logs_in_uses_the_urls_database_leases_and_settles_a_job(
    tmp_path: Path, namespace: str
) -> None:
    server = RedisServer(tmp_path / "redis", settings=["--requirepass", "s3cret"]).start()
    app = _app(f"redis://:s3cret@127.0.0.1:{server.port}/3", namespace)
    opened: list[DirectLine] = []
    try:
        broker = _broker(app)
        assert isinstance(broker, DirectWaits)
        sent = app.tasks["maths.add"].delay(2, 3)
        line = broker.direct_line("default", LEASE_MS, "w-line")
        assert line is not None
        opened.append(line)
        with _pipe() as (read_fd, _):
            fetched, watched = line.lease(read_fd)
        assert not watched
        assert [d.id for d in fetched.jobs] == [sent.id]
        detail = app.inspector.job("default", sent.id)
        assert detail is not None
        assert detail.state is JobState.ACTIVE

        clients = redis.Redis(port=server.port, password="s3cret")
        named = [c for c in clients.client_list() if c.get("name") == "errands-wait:w-line"]
        assert [c["db"] for c in named] == ["3"]
        clients.close()

        record = msgspec.json.encode(OutcomeRecord("succeeded", 5, attempts=1))
        delivery = fetched.jobs[0]
        assert line.ack(Outcome(delivery.id, delivery.token, "succeeded", record)) is (
            AckCode.SUCCEEDED
        )
        assert sent.get(timeout=5) == 5
        # The same ack again (a reply lost, sent once more): refused, nothing changes.
        assert line.ack(Outcome(delivery.id, delivery.token, "succeeded", record)) is (
            AckCode.STALE
        )
    finally:
        for each in opened:
            each.close()
        app.close()
        server.stop()


def test_a_message_on_the_watched_pipe_ends_the_wait_in_redis_at_once(
    server: RedisServer, namespace: str
) -> None:
    with _line(server.url, namespace, "w-pipe") as (_, line), _pipe() as (read_fd, write_fd):
        line.lease(read_fd)  # connects, and learns there is nothing due: waits 5 s next
        ended = threading.Timer(0.2, os.write, (write_fd, b"x"))
        ended.start()
        began = time.monotonic()
        fetched, watched = line.lease(read_fd)
        took = time.monotonic() - began
        ended.join()
        assert watched
        assert fetched.jobs == []
        assert took < 2.5, f"the wait went on for {took:.2f}s after the pipe was written"
        blocked = [c for c in server.client().client_list() if "b" in c["flags"]]
        assert blocked == [], "the wait must end in Redis too, not only on our side"


def test_a_server_that_lost_the_library_gets_it_back_and_nothing_is_leased_twice(
    server: RedisServer, namespace: str
) -> None:
    with _line(server.url, namespace, "w-lib") as (app, line), _pipe() as (read_fd, _):
        sent = app.tasks["maths.add"].delay(1, 1)
        server.command("FUNCTION", "FLUSH")
        first, _ = line.lease(read_fd)
        assert first.jobs == []  # nothing ran: the library was missing
        second, _ = line.lease(read_fd)
        assert [d.id for d in second.jobs] == [sent.id]


def test_a_line_to_a_replica_fails_as_a_passing_fault(
    server: RedisServer, tmp_path: Path, namespace: str
) -> None:
    replica = RedisServer(tmp_path / "replica").start()
    app = _app(replica.url, namespace)
    try:
        _broker(app).load_library()
        replica.replica_of(server)
        replica.wait_in_sync()
        line = _broker(app).direct_line("default", LEASE_MS, "w-replica")
        assert line is not None
        with _pipe() as (read_fd, _), pytest.raises(BrokerUnavailable, match="READONLY"):
            line.lease(read_fd)
    finally:
        app.close()
        replica.stop()


def test_a_wrong_password_is_one_clear_error(tmp_path: Path, namespace: str) -> None:
    server = RedisServer(tmp_path / "redis", settings=["--requirepass", "right"]).start()
    app = _app(f"redis://:wrong@127.0.0.1:{server.port}/0", namespace)
    try:
        line = _broker(app).direct_line("default", LEASE_MS, "w-auth")
        assert line is not None
        with _pipe() as (read_fd, _), pytest.raises(BrokerError, match="refused errands") as err:
            line.lease(read_fd)
        assert "wrong" not in str(err.value), "the password must not reach the message"
        assert not isinstance(err.value, BrokerUnavailable)  # it will not pass by itself
    finally:
        app.close()
        server.stop()


def test_a_server_that_dies_during_the_wait_ends_it_with_broker_unavailable(
    server: RedisServer, namespace: str
) -> None:
    with _line(server.url, namespace, "w-dies") as (_, line), _pipe() as (read_fd, _):
        line.lease(read_fd)
        killer = threading.Timer(0.2, server.kill)
        killer.start()
        began = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="cannot reach Redis"):
            line.lease(read_fd)
        killer.join()
        assert time.monotonic() - began < 2.5
        # The line closed itself: the next lease connects again, and says it cannot.
        with pytest.raises(BrokerUnavailable, match="cannot reach Redis"):
            line.lease(read_fd)


def test_no_line_is_offered_for_tls(namespace: str) -> None:
    app = _app("rediss://127.0.0.1:6380/0", namespace)
    try:
        assert _broker(app).direct_line("default", LEASE_MS, "w-tls") is None
    finally:
        app.close()
