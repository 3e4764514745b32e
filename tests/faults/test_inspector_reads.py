"""The inspector on a bad day: a replica, a full Redis, no library, records broken by hand.

An operator reads the queues when things go wrong, so the reads must work then: every view is a
read-only function (a replica serves it, a Redis at its maxmemory still answers it), a server
that lost the library gets it again, and a record broken by hand shows as what it is instead
of failing the page it is on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.faults.servers import RedisServer

from errands import App, JobState
from errands.broker.redis import RedisBroker
from errands.broker.views import DeadFilter
from errands.errors import BrokerUnavailable
from errands.testing import run_jobs


def _app(url: str, namespace: str) -> App:
    app = App(url, namespace=namespace)

    @app.task(name="billing.charge", max_retries=0)
    def charge(order: int) -> None:
        raise KeyError(f"no card for order {order}")

    @app.task(name="billing.refund")
    def refund(order: int) -> None: ...

    return app


def _kill(app: App, orders: range) -> list[str]:
    sent = [app.tasks["billing.charge"].delay(order) for order in orders]
    run_jobs(app, ["default"])
    return [handle.id for handle in sent]


@pytest.mark.timeout(60)
def test_a_replica_and_a_full_redis_still_answer_every_read(
    tmp_path: Path, server: RedisServer, namespace: str
) -> None:
    app = _app(server.url, namespace)
    dead = _kill(app, range(3))
    waiting = app.tasks["billing.refund"].delay(9)
    replica = RedisServer(tmp_path / "replica").start()
    try:
        replica.replica_of(server)
        replica.wait_in_sync()
        on_replica = RedisBroker(replica.url, namespace=namespace).inspector
        assert on_replica.queue("default").dead == 3
        assert [j.id for j in on_replica.dead("default").items] == sorted(dead)
        detail = on_replica.job("default", waiting.id)
        assert detail is not None
        assert (detail.state, detail.args) == (JobState.QUEUED, [9])

        server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
        try:
            full = app.inspector
            assert full.queue("default").ready == 1
            page = full.dead("default", where=DeadFilter(error_type="KeyError"))
            assert len(page.items) == 3
            assert full.job("default", dead[0]) is not None
        finally:
            server.command("CONFIG", "SET", "maxmemory", "0")
    finally:
        replica.stop()
        app.close()


@pytest.mark.timeout(30)
def test_a_server_that_lost_the_library_gets_it_again_for_a_read(
    server: RedisServer, namespace: str
) -> None:
    app = _app(server.url, namespace)
    _kill(app, range(2))
    server.command("FUNCTION", "FLUSH")
    assert app.inspector.queue("default").dead == 2
    assert len(app.inspector.dead("default").items) == 2
    app.close()


@pytest.mark.timeout(30)
def test_records_broken_by_hand_show_as_such_and_the_page_goes_on(
    server: RedisServer, namespace: str
) -> None:
    app = _app(server.url, namespace)
    first, second, third = _kill(app, range(3))
    prefix = RedisBroker(server.url, namespace=namespace).keys("default").prefix
    client = server.client()
    try:
        client.hset(prefix + "meta", second, b"\xc1 not msgpack")
        client.hset(prefix + "jobs", third, b"not json")
        client.hset(prefix + "history", third, b"[not json")
        client.hset(prefix + "workers", "w-broken", b"{not json")
    finally:
        client.close()

    page = app.inspector.dead("default")
    assert [j.id for j in page.items] == sorted([first, second, third])
    broken = next(j for j in page.items if j.id == second)
    assert (broken.task, broken.error) == ("?", None)
    corrupt = app.inspector.job("default", second)
    assert corrupt is not None
    assert corrupt.state == JobState.DEAD  # still in the dead set, its meta unreadable
    no_payload = app.inspector.job("default", third)
    assert no_payload is not None
    assert (no_payload.task, no_payload.args, no_payload.history) == (None, None, [])
    assert no_payload.error is not None  # the outcome is intact
    assert app.inspector.workers("default").items == []  # an unreadable entry is not live
    app.close()


def test_an_unreachable_redis_is_one_clear_error_for_every_read(server: RedisServer) -> None:
    app = App(server.url)
    server.stop()
    inspector = app.inspector
    for read in (
        lambda: inspector.queue("default"),
        inspector.queues,
        lambda: inspector.job("default", "j1"),
        lambda: inspector.dead("default"),
        lambda: inspector.workers("default"),
    ):
        with pytest.raises(BrokerUnavailable, match="cannot reach Redis at"):
            read()
    app.close()
