"""Two real schedulers (``errands beat``) and a worker, on an every-second schedule (issue #13).

For 60 s of nominal time: while a leader lives, exactly one job per second, every second, none
doubled. Half-way, the leader (found through the store's lease, not guessed) is killed with
SIGKILL: the other scheduler leads within the documented takeover time (`LEASE_S` + `RENEW_S`,
not before the lease ran out), and its first fire coalesces the seconds nobody fired, as the
default catch-up policy (``latest``) says: one run, the others counted as skipped. The counts
of the stored fire state and of the queue then equal what the policy predicts, no more, no less.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest
import redis

from errands import App
from errands.broker.redis.schedules import BEAT_SUFFIXES, beat_keys
from errands.schedule.records import FireState
from errands.schedule.scheduler import LEASE_S, RENEW_S
from errands.schedule.spec import fire_id
from tests.integration.beat_app import build, fires_key
from tests.integration.workers import Workers, wait_until

APP = "tests.integration.beat_app:app"
SCHEDULE = "every-second"
#: The nominal seconds the schedule runs for, and the one after which the leader is killed.
SPAN_S = 60
KILL_AFTER_S = 30
#: The way of a fire from the scheduler's clock through Redis to the task's run, and the
#: overshoot of this test's polls: the slack of every timing bound below.
LATENCY_S = 0.5
#: The documented takeover time (docs/scheduling.md): the lease, plus one renewal period.
TAKEOVER_S = LEASE_S + RENEW_S


class Fire(NamedTuple):
    """One run of the schedule's task, as it recorded itself."""

    job: str
    nominal: int  # ctx.scheduled_for, in whole Unix seconds
    ran_at: float


class Fires:
    """The runs of the schedule, read as they come; a second run twice fails at once.

    Args:
        client: a client of the test's Redis.
        namespace: the test's namespace (the task pushes on its `fires_key`).
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._key = fires_key(namespace)
        self.seen: list[Fire] = []
        self._nominals: set[int] = set()

    def poll(self) -> list[Fire]:
        """Read the runs recorded since the last poll; return every run so far."""
        raw: list[bytes] = self._client.lrange(self._key, len(self.seen), -1)  # type: ignore[assignment]
        for item in raw:
            entry = json.loads(item)
            nominal = float(entry["nominal"])
            assert nominal == int(nominal), f"a fire off a whole second: {entry}"
            fire = Fire(str(entry["job"]), int(nominal), float(entry["ran_at"]))
            assert fire.nominal not in self._nominals, f"second {fire.nominal} ran twice: {fire}"
            self._nominals.add(fire.nominal)
            self.seen.append(fire)
        return self.seen

    def wait_for(self, nominal: int, stall_s: float, what: str) -> Fire:
        """Block until the run of a second at or after `nominal` is recorded; return the first.

        Raises:
            AssertionError: no new run came for `stall_s` (the fires stopped), or one doubled.
        """
        last_change, count = time.monotonic(), len(self.seen)
        while not any(f.nominal >= nominal for f in self.poll()):
            if len(self.seen) != count:
                last_change, count = time.monotonic(), len(self.seen)
            elif time.monotonic() - last_change > stall_s:
                raise AssertionError(
                    f"no fire for {stall_s:g}s waiting for {what}; ran: {self.seen[-3:]}"
                )
            time.sleep(0.02)
        return next(f for f in self.seen if f.nominal >= nominal)


def _lease(client: redis.Redis, namespace: str) -> tuple[int, int] | None:
    """The pid and fence of the scheduler that holds the lease, read from the store."""
    raw: bytes | None = client.get(beat_keys(namespace)[BEAT_SUFFIXES.index("leader")])  # type: ignore[assignment]
    if raw is None:
        return None
    owner, _, fence = raw.decode().rpartition(" ")  # "<host>:<pid>:<random> <fence>"
    return int(owner.rsplit(":", 2)[1]), int(fence)


def _state(app: App) -> FireState:
    state = app.schedules.get(SCHEDULE).state
    assert state is not None, "no leader stored the schedule's fire state"
    return state


def _consecutive(seconds: list[int]) -> bool:
    return seconds == list(range(seconds[0], seconds[0] + len(seconds)))


@pytest.fixture
def farm(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Workers]:
    """Workers and schedulers of the beat app, each stopped by its pid at the end."""
    started = Workers(redis_url, namespace, tmp_path, app_spec=APP)
    yield started
    started.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test's Redis, to read the fires and the lease."""
    opened = redis.Redis.from_url(redis_url)
    yield opened
    opened.close()


@pytest.mark.slow
@pytest.mark.timeout(SPAN_S + 60)
def test_two_schedulers_fire_each_second_once_and_the_survivor_takes_over_after_a_sigkill(
    redis_url: str, namespace: str, farm: Workers, client: redis.Redis
) -> None:
    app = build(redis_url, namespace)
    fires = Fires(client, namespace)
    try:
        farm.start("-c", "1")
        schedulers = [farm.spawn(command="beat"), farm.spawn(command="beat")]
        for scheduler in schedulers:
            scheduler.wait_for_log("scheduler ")
        first = fires.wait_for(0, 30, "the first fire").nominal
        definition = app.schedules.get(SCHEDULE).definition
        assert (definition.catchup, definition.spec.every_s) == ("latest", 1.0)
        assert definition.catchup_window_s > TAKEOVER_S  # so nothing of the takeover is missed

        # Both run: one fire a second. Then the leader, as the store names it, is killed.
        fires.wait_for(first + KILL_AFTER_S - 1, 2 + LATENCY_S, f"{KILL_AFTER_S} fires")
        lease = _lease(client, namespace)
        assert lease is not None
        leader_pid, fence = lease
        by_pid = {s.pid: s for s in schedulers}
        assert leader_pid in by_pid, f"the lease names pid {leader_pid}, none of {list(by_pid)}"
        assert all(s.running() for s in schedulers)
        os.kill(leader_pid, signal.SIGKILL)
        killed_at = time.time()
        leader = by_pid.pop(leader_pid)
        leader.wait(10)
        (survivor,) = by_pid.values()
        at_death = _state(app)
        assert _lease(client, namespace) == (leader_pid, fence), "the lease ended at once"

        # The survivor leads once the dead leader's lease ran out, and fires at once.
        wait_until(
            lambda: (_lease(client, namespace) or (leader_pid, 0))[0] != leader_pid,
            TAKEOVER_S + LATENCY_S + 5,
            "the survivor's lease",
        )
        took_over_at = time.time()
        took_over_s = took_over_at - killed_at
        assert _lease(client, namespace) == (survivor.pid, fence + 1)
        print(f"the survivor leads {took_over_s:.2f}s after the SIGKILL")  # shown with -s
        assert LEASE_S - RENEW_S - LATENCY_S <= took_over_s <= TAKEOVER_S + LATENCY_S
        resumed = fires.wait_for(int(killed_at) + 1, TAKEOVER_S + LATENCY_S + 1, "the takeover")
        print(f"its first fire ran {resumed.ran_at - killed_at:.2f}s after the SIGKILL")
        assert resumed.ran_at - killed_at <= TAKEOVER_S + LATENCY_S
        # The coalesced fire is the latest second due when it took over.
        assert took_over_at - 1 - LATENCY_S <= resumed.nominal <= took_over_at + LATENCY_S

        fires.wait_for(first + SPAN_S - 1, 2 + LATENCY_S, f"{SPAN_S} s of fires")
        survivor.signal(signal.SIGTERM)
        assert survivor.wait(20) == 0
        assert _lease(client, namespace) is None, "the survivor gave the lease up as it stopped"
        final = _state(app)
        # The worker runs every job sent, then stops.
        wait_until(
            lambda: len(fires.poll()) >= _enqueued(app), 10, "the worker to run every fire sent"
        )
        farm.close()
        _check_fires(app, fires.poll(), at_death, final, killed_at)
    finally:
        app.close()


def _enqueued(app: App) -> int:
    return app.inspector.queue("default").stats.get("enqueued", 0)


def _check_fires(
    app: App, fires: list[Fire], at_death: FireState, final: FireState, killed_at: float
) -> None:
    nominals = sorted(f.nominal for f in fires)
    assert len(set(nominals)) == len(nominals), "a second was fired twice"
    assert [f.job for f in fires] == [
        fire_id(SCHEDULE, datetime.fromtimestamp(f.nominal, UTC)) for f in fires
    ], "each job runs under its fire's id"
    assert len({f.job for f in fires}) == len(fires), "a job ran twice"
    assert all(0 <= f.ran_at - f.nominal < 1 for f in fires), "a fire ran late"

    # The dead leader fired every second until its death; the last it recorded is `last`. It
    # may have sent one more and died before recording it: that one runs, once.
    before = [n for n in nominals if n <= killed_at]
    after = [n for n in nominals if n > killed_at]
    assert at_death.last_ms is not None
    last = at_death.last_ms // 1000
    assert _consecutive(before), f"a gap while the first leader lived: {before}"
    assert before[-1] in (last, last + 1), (before[-1], at_death)
    unrecorded = before[-1] - last
    assert (at_death.fired, at_death.skipped, at_death.missed) == (len(before) - unrecorded, 0, 0)

    # The survivor fired every second from its takeover on; its first fire coalesced the
    # seconds after `last` (catchup "latest"), counted as skipped; none was too old to run.
    assert after, "the survivor never fired"
    assert _consecutive(after), f"a gap while the survivor led: {after}"
    assert after[-1] - nominals[0] >= SPAN_S - 1
    assert (final.skipped, final.missed) == (after[0] - last - 1, 0), (final, after[0], last)
    assert final.fired == at_death.fired + len(after)
    assert final.last_ms == after[-1] * 1000
    # Every job sent ran once: as many as the policy predicts, no more, no less.
    stats = app.inspector.queue("default").stats
    assert stats.get("enqueued") == stats.get("succeeded") == len(fires)
    assert len(fires) == final.fired + unrecorded


@pytest.mark.timeout(60)
def test_a_worker_with_beat_fires_and_runs_the_schedule_and_stops_cleanly(
    namespace: str, farm: Workers, client: redis.Redis
) -> None:
    worker = farm.start("-c", "1", "--beat")
    worker.wait_for_log(" leads (fence")
    fires = Fires(client, namespace)
    fires.wait_for(fires.wait_for(0, 15, "a fire").nominal + 2, 2 + LATENCY_S, "3 fires")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert "stopped" in worker.log()
    fires.poll()  # fails if a second ran twice
