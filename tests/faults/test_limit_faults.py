"""Limiters on a bad day, against a Redis server of the test's own.

A limiter record broken or deleted by hand, a waiter whose job is gone, a meta whose limiter
list is broken, a full Redis, and a Redis killed and restarted: no call fails, no job is
stranded, and the cap holds again at once (a broken record is started afresh).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec
from tests.faults.probes import run_on_own_loop
from tests.faults.servers import RedisServer

from errands import App, JobState
from errands.broker.types import AckCode, Delivery, Outcome

T = TypeVar("T")
Q = "default"


def _app(url: str, namespace: str) -> App:
    app = App(url, namespace=namespace)
    app.limiter("pool", concurrency=1)
    app.limiter("partner", rate="1/m")

    @app.task(name="capped", limits=["pool"])
    def capped(n: int) -> int:
        return n

    @app.task(name="rated", limits=["partner"])
    def rated(n: int) -> int:
        return n

    return app


_run = run_on_own_loop


def _fetch(app: App, n: int = 10) -> list[Delivery]:
    return _run(app, app.broker.fetch(Q, n, 60_000, "w1")).jobs


def _ok(app: App, d: Delivery) -> list[AckCode]:
    outcome = Outcome(d.id, d.token, "succeeded", msgspec.json.encode({"state": "succeeded"}))
    return _run(app, app.broker.ack(Q, [outcome]))


def _key(namespace: str, suffix: str) -> str:
    return f"{namespace}:{{{Q}}}:{suffix}"


def test_a_limiter_record_broken_by_hand_is_started_afresh(
    server: RedisServer, namespace: str
) -> None:
    app = _app(server.url, namespace)
    capped = app.tasks["capped"]
    try:
        [capped.delay(n) for n in range(3)]
        [first] = _fetch(app)
        server.command("HSET", _key(namespace, "limits"), "pool|", "not msgpack")
        assert _ok(app, first) == [AckCode.SUCCEEDED], "the record is unreadable: no error"
        [second] = _fetch(app)  # woken all the same; the record is started afresh
        assert _fetch(app) == [], "the fresh record holds the cap"
        assert _ok(app, second) == [AckCode.SUCCEEDED]
        assert len(_fetch(app)) == 1, "the last job runs"
    finally:
        app.close()


def test_a_limiter_key_deleted_under_running_jobs_breaks_no_call(
    server: RedisServer, namespace: str
) -> None:
    app = _app(server.url, namespace)
    capped = app.tasks["capped"]
    try:
        [capped.delay(n) for n in range(2)]
        [first] = _fetch(app)
        server.command("DEL", _key(namespace, "limits"), _key(namespace, "limit_wait"))
        assert _ok(app, first) == [AckCode.SUCCEEDED]
        # The waiter's entry went with limit_wait: it comes back by itself (LIMIT_PARK_MS),
        # or at once when it is made due, as an operator's redrive of delayed jobs would.
        server.command("ZADD", _key(namespace, "delayed"), 0, _waiting_id(server, namespace))
        assert len(_fetch(app)) == 1
    finally:
        app.close()


def _waiting_id(server: RedisServer, namespace: str) -> str:
    ids = server.command("ZRANGE", _key(namespace, "delayed"), 0, -1)
    assert isinstance(ids, list)
    assert len(ids) == 1, f"one job waits for the slot: {ids}"
    return str(ids[0].decode())


def test_a_waiter_whose_job_is_gone_is_skipped(server: RedisServer, namespace: str) -> None:
    app = _app(server.url, namespace)
    capped = app.tasks["capped"]
    try:
        [capped.delay(n) for n in range(3)]
        [first] = _fetch(app)
        assert _fetch(app) == []
        waiters = server.command("ZRANGE", _key(namespace, "limit_wait"), 0, -1)
        assert isinstance(waiters, list)
        assert len(waiters) == 2
        gone = waiters[0].decode().rsplit("|", 1)[1]
        server.command("HDEL", _key(namespace, "meta"), gone)  # lost, or deleted by hand
        assert _ok(app, first) == [AckCode.SUCCEEDED]
        [next_one] = _fetch(app)
        assert next_one.id == waiters[1].decode().rsplit("|", 1)[1], "the next waiter runs"
    finally:
        app.close()


def test_a_broken_limiter_list_in_a_meta_sends_the_job_to_the_dead_set(
    server: RedisServer, namespace: str
) -> None:
    app = _app(server.url, namespace)
    capped = app.tasks["capped"]
    try:
        result = capped.delay(1)
        meta = {"s": "queued", "a": 0, "m": 4, "d": 0, "p": 0, "st": 0, "xs": 1, "rt": 1000,
                "sc": 1, "lm": "pool|"}  # fmt: skip
        server.command("HSET", _key(namespace, "meta"), result.id, msgspec.msgpack.encode(meta))
        good = capped.delay(2)
        [ran] = _fetch(app)
        assert ran.id == good.id, "the good job runs; the broken one does not hold it up"
        assert result.state is JobState.FAILED, "buried: in the dead set, its record says why"
        [dead] = app.inspector.dead(Q).items
        assert dead.id == result.id
        assert dead.error is not None
        assert dead.error.type == "errands.errors.CorruptJob"
    finally:
        app.close()


def test_a_full_redis_still_hands_out_limited_jobs(server: RedisServer, namespace: str) -> None:
    app = _app(server.url, namespace)
    rated = app.tasks["rated"]
    try:
        [rated.delay(n) for n in range(3)]
        server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
        assert len(_fetch(app)) == 1, "a full Redis drains: the limiter books slots in it"
        assert _fetch(app) == []
        server.command("CONFIG", "SET", "maxmemory", "0")
    finally:
        app.close()


def test_a_redis_killed_and_restarted_keeps_the_slots_taken(tmp_path: Path, namespace: str) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    app = _app(server.url, namespace)
    capped = app.tasks["capped"]
    try:
        [capped.delay(n) for n in range(2)]
        [first] = _fetch(app)
        server.kill()
        server = RedisServer(tmp_path / "redis", appendonly=True, port=server.port).start()
        assert _fetch(app) == [], "the slot taken before the crash is still taken"
        assert _ok(app, first) == [AckCode.SUCCEEDED]
        assert len(_fetch(app)) == 1
    finally:
        app.close()
        server.stop()
