"""Two real schedulers (``errands beat``) and a worker, on an every-second schedule.

They run together: exactly one job per second, none doubled. The leader is killed with SIGKILL:
the other leads within the documented takeover time (the 10 s lease plus a 2 s renewal), the
seconds nobody fired are coalesced by the catch-up policy into one run (the others counted as
skipped), and no second is fired twice.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from errands import App
from errands.schedule.scheduler import LEASE_S, RENEW_S
from tests.integration.beat_app import build, fires_key
from tests.integration.workers import WorkerProcess, Workers, wait_until

APP = "tests.integration.beat_app:app"


def _leader(schedulers: list[WorkerProcess]) -> WorkerProcess | None:
    leading = [s for s in schedulers if s.running() and " leads (fence" in s.log()]
    return leading[-1] if len(leading) == 1 else None


def _fires(client: redis.Redis, namespace: str) -> list[dict[str, float | str]]:
    raw: list[bytes] = client.lrange(fires_key(namespace), 0, -1)  # type: ignore[assignment]
    return [json.loads(item) for item in raw]


@pytest.fixture
def farm(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Workers]:
    """Workers and schedulers of the beat app, stopped at the end."""
    started = Workers(redis_url, namespace, tmp_path, app_spec=APP)
    yield started
    started.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test's Redis, to read the fires."""
    opened = redis.Redis.from_url(redis_url)
    yield opened
    opened.close()


@pytest.mark.timeout(120)
def test_two_schedulers_fire_each_second_once_and_the_survivor_takes_over(
    redis_url: str, namespace: str, farm: Workers, client: redis.Redis
) -> None:
    app = build(redis_url, namespace)
    try:
        farm.start("-c", "1")
        first = farm.spawn(command="beat")
        first.wait_for_log(" leads (fence")
        second = farm.spawn(command="beat")
        second.wait_for_log("scheduler ")
        schedulers = [first, second]

        wait_until(lambda: len(_fires(client, namespace)) >= 12, 30, "12 fires with both running")
        leader = _leader(schedulers)
        assert leader is first
        leader.kill_all()
        killed_at = time.time()
        survivor = second
        wait_until(lambda: " leads (fence" in survivor.log(), LEASE_S + RENEW_S + 5, "takeover")
        took_over = time.time() - killed_at
        assert took_over <= LEASE_S + RENEW_S + 1, f"took over after {took_over:.1f}s"
        print(f"took over {took_over:.1f}s after the leader was killed")  # shown with -s
        count = len(_fires(client, namespace))
        wait_until(lambda: len(_fires(client, namespace)) >= count + 5, 15, "5 more fires")
        survivor.signal(signal.SIGTERM)
        assert survivor.wait(20) == 0
        farm.close()  # the worker runs what it holds, then stops
        _check_fires(app, _fires(client, namespace))
    finally:
        app.close()


def _check_fires(app: App, fires: list[dict[str, float | str]]) -> None:
    nominals = [float(f["nominal"]) for f in fires]
    assert len(set(nominals)) == len(nominals), "a second was fired twice"
    assert len({f["job"] for f in fires}) == len(fires)
    assert all(n == int(n) for n in nominals), "fires are on whole seconds"
    assert all(float(f["ran_at"]) >= float(f["nominal"]) for f in fires)
    # Every second from the first fire to the last ran, but those of the takeover gap: they
    # were coalesced into the first fire of the new leader, and counted as skipped.
    seconds = sorted(int(n) for n in nominals)
    gap = [s for s in range(seconds[0], seconds[-1] + 1) if s not in set(seconds)]
    assert len(gap) <= LEASE_S + RENEW_S + 1
    state = app.schedules.get("every-second").state
    assert state is not None
    # One fire may have been sent by the killed leader and not recorded: its successor sent it
    # again under the same id (enqueued once, not counted twice), and counted it as skipped.
    assert len(gap) <= state.skipped <= len(gap) + 1, (state, gap)
    enqueued = app.inspector.queue("default").stats.get("enqueued", 0)
    assert state.fired <= enqueued <= state.fired + 1
    assert enqueued - 1 <= len(fires) <= enqueued  # the last may not have run before the stop


@pytest.mark.timeout(60)
def test_a_worker_with_beat_fires_and_runs_the_schedule_and_stops_cleanly(
    namespace: str, farm: Workers, client: redis.Redis
) -> None:
    worker = farm.start("-c", "1", "--beat")
    worker.wait_for_log(" leads (fence")
    wait_until(lambda: len(_fires(client, namespace)) >= 3, 15, "3 fires run by the worker")
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert "stopped" in worker.log()
    nominals = [float(f["nominal"]) for f in _fires(client, namespace)]
    assert len(set(nominals)) == len(nominals)
