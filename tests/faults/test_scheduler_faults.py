"""The scheduler on a bad day, against a Redis server of the test's own.

A full Redis (OOM), a dead one (kill -9, then a restart on its append-only file), a replica
after a failover (READONLY), and a definition broken by hand: fires are delayed, never lost and
never doubled; the catch-up policy handles what was late once Redis takes writes again. The
scheduler's clock is a manual one (the fire times), Redis keeps its own (the lease).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from tests.faults.probes import run_on_own_loop
from tests.faults.servers import RedisServer

from errands import App
from errands.errors import BrokerFull, BrokerUnavailable
from errands.schedule.scheduler import Scheduler
from errands.testing import ManualClock

START = 1_800_000_000.0
T = TypeVar("T")


def _app(url: str, namespace: str) -> App:
    app = App(url, namespace=namespace)

    @app.periodic(every=timedelta(seconds=10), id="tick", overlap="allow_all")
    @app.task(name="tick")
    def tick() -> None: ...

    return app


_run = run_on_own_loop


def _step(app: App, scheduler: Scheduler) -> float:
    return _run(app, scheduler.step())


def _started(app: App, clock: ManualClock) -> Scheduler:
    scheduler = Scheduler(app, clock=clock)
    _run(app, scheduler.reconcile())
    _step(app, scheduler)
    assert scheduler.leading
    return scheduler


def _enqueued(app: App) -> int:
    return app.inspector.queue("default").stats.get("enqueued", 0)


def test_a_full_redis_delays_fires_and_the_catch_up_sends_the_latest_once(
    server: RedisServer, namespace: str
) -> None:
    clock = ManualClock(START)
    app = _app(server.url, namespace)
    try:
        scheduler = _started(app, clock)
        server.command("CONFIG", "SET", "maxmemory", "1")  # used memory is always over it
        for _ in range(3):
            clock.advance(10)
            with pytest.raises(BrokerFull, match="maxmemory reached"):
                _step(app, scheduler)
            assert scheduler.leading, "the lease is renewed on a full Redis (allow-oom)"
        server.command("CONFIG", "SET", "maxmemory", "0")
        _step(app, scheduler)
        assert _enqueued(app) == 1
        state = app.schedules.get("tick").state
        assert state is not None
        assert (state.fired, state.skipped, state.missed) == (1, 2, 0)
        assert state.last_job == f"tick@{round((START + 30) * 1000)}"
    finally:
        app.close()


def test_a_redis_killed_and_restarted_loses_no_fire_and_doubles_none(
    tmp_path: Path, namespace: str
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    clock = ManualClock(START)
    app = _app(server.url, namespace)
    try:
        scheduler = _started(app, clock)
        clock.advance(10)
        _step(app, scheduler)
        assert _enqueued(app) == 1
        server.kill()
        clock.advance(10)
        with pytest.raises(BrokerUnavailable, match="cannot reach Redis"):
            _step(app, scheduler)
        server = RedisServer(tmp_path / "redis", appendonly=True, port=server.port).start()
        _step(app, scheduler)
        assert scheduler.leading, "the same scheduler leads on (its lease was kept)"
        assert _enqueued(app) == 2
        state = app.schedules.get("tick").state
        assert state is not None
        assert (state.fired, state.last_job) == (2, f"tick@{round((START + 20) * 1000)}")
    finally:
        app.close()
        server.stop()


def test_a_scheduler_on_a_replica_fails_over_with_its_primary(
    server: RedisServer, tmp_path: Path, namespace: str
) -> None:
    clock = ManualClock(START)
    app = _app(server.url, namespace)
    replica = RedisServer(tmp_path / "replica").start()
    try:
        scheduler = _started(app, clock)
        # A failover: the replica is promoted, the server the app talks to follows it.
        replica.replica_of(server)
        replica.wait_in_sync()
        replica.replica_of(None)
        server.replica_of(replica)
        server.wait_in_sync()
        clock.advance(10)
        with pytest.raises(BrokerUnavailable, match="READONLY"):
            _step(app, scheduler)
        server.replica_of(None)  # and the primary again
        _step(app, scheduler)
        assert scheduler.leading
        state = app.schedules.get("tick").state
        assert state is not None
        assert state.fired == 1
    finally:
        app.close()
        replica.stop()


def test_a_definition_broken_by_hand_is_skipped_and_the_others_fire(
    server: RedisServer, namespace: str
) -> None:
    clock = ManualClock(START)
    app = _app(server.url, namespace)
    try:
        app.schedules.upsert("other", "tick", every=10, overlap="allow_all")
        scheduler = _started(app, clock)
        defs_key = f"{namespace}:{{beat:schedules}}:defs"
        server.command("HSET", defs_key, "other", "{not json")
        server.command("INCR", f"{namespace}:{{beat:schedules}}:version")
        clock.advance(10)
        _step(app, scheduler)
        assert _enqueued(app) == 1  # tick's; the broken one is skipped
        assert [i.definition.id for i in app.schedules.list()] == ["tick"]
    finally:
        app.close()


def test_a_fire_state_or_pause_broken_by_hand_starts_afresh_and_the_schedule_fires(
    server: RedisServer, namespace: str
) -> None:
    clock = ManualClock(START)
    app = _app(server.url, namespace)
    try:
        scheduler = _started(app, clock)
        prefix = f"{namespace}:{{beat:schedules}}"
        server.command("HSET", f"{prefix}:state", "tick", "\xff not json")
        server.command("HSET", f"{prefix}:pauses", "tick", "[1, 2")
        server.command("INCR", f"{prefix}:version")
        clock.advance(10)
        _step(app, scheduler)  # read again: the state is fresh, the pause none
        clock.advance(10)
        _step(app, scheduler)
        assert _enqueued(app) == 1
        info = app.schedules.get("tick")
        assert info.state is not None
        assert (info.state.fired, info.pause.paused) == (1, False)
    finally:
        app.close()


def test_a_redis_that_restarts_empty_gets_the_code_schedules_back_and_fires_on(
    server: RedisServer, namespace: str
) -> None:
    clock = ManualClock(START)
    app = _app(server.url, namespace)
    try:
        scheduler = _started(app, clock)
        clock.advance(10)
        _step(app, scheduler)
        server.command("FLUSHALL")  # this test's own server: as a restart with no persistence
        clock.advance(10)
        _step(app, scheduler)  # a new lease, a new fence, the schedules stored again
        assert scheduler.leading
        assert [i.definition.id for i in App(server.url, namespace=namespace).schedules.list()] == [
            "tick"
        ]
        clock.advance(10)
        _step(app, scheduler)
        assert _enqueued(app) == 1  # the fire after the loss: the counters were lost too
    finally:
        app.close()
