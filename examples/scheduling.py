"""Scheduling: a task every second from a worker that runs a scheduler too, a pause, a DST day.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/scheduling.py

It exits 0 when everything it shows held. See docs/scheduling.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools
import os
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from errands import App, TaskContext
from errands.schedule.spec import ScheduleSpec, fires_after
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

BROKER_URL = os.environ.get("ERRANDS_BROKER_URL", "redis://localhost:6379/0")
app = App(BROKER_URL, namespace=NAMESPACE)
SEEN_KEY = f"{NAMESPACE}:example:heartbeats"


@app.periodic(every=1, id="heartbeat")
@app.task(name="scheduling.heartbeat", bind=True)
def heartbeat(ctx: TaskContext) -> None:
    """Note the fire's nominal time: what the schedule meant, not when the job happened to run."""
    assert ctx.scheduled_for is not None
    redis.Redis.from_url(BROKER_URL).rpush(SEEN_KEY, ctx.scheduled_for.isoformat())


def seen(client: redis.Redis) -> list[str]:
    """The nominal times of the heartbeats run so far."""
    return [item.decode() for item in client.lrange(SEEN_KEY, 0, -1)]  # type: ignore[union-attr]


def wait_for(seconds: float, condition: Callable[[], bool]) -> None:
    """Wait up to `seconds` for `condition()` to hold."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_with_worker(client: redis.Redis) -> list[bool]:
    held = []
    wait_for(20, lambda: len(seen(client)) >= 3)
    beats = seen(client)
    held.append(check("the schedule fires every second", len(beats) >= 3, beats[:3]))
    whole = [datetime.fromisoformat(b).timestamp() for b in beats]
    held.append(
        check(
            "each fire has its own whole second, none twice",
            len(set(whole)) == len(whole) and all(w == int(w) for w in whole),
        )
    )
    app.schedules.pause("heartbeat", note="example: a pause")
    time.sleep(1.5)  # a fire due meanwhile may still be running
    paused_at = len(seen(client))
    time.sleep(2.0)
    held.append(check("a paused schedule fires nothing", len(seen(client)) == paused_at))
    app.schedules.resume("heartbeat", resume_from="now")
    wait_for(10, lambda: len(seen(client)) > paused_at)
    held.append(check("it fires again once resumed", len(seen(client)) > paused_at))
    return held


def dst_day() -> list[bool]:
    prague = ZoneInfo("Europe/Prague")
    spec = ScheduleSpec(cron="30 2 * * *", tz="Europe/Prague")
    first = list(itertools.islice(fires_after(spec, datetime(2026, 3, 28, 12, tzinfo=prague)), 2))
    shown = [f.isoformat() for f in first]
    wanted = ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    return [check("02:30 on the spring-forward night fires at 03:00", shown == wanted, shown)]


def main() -> list[bool]:
    client = redis.Redis.from_url(BROKER_URL)
    try:
        held = dst_day()
        with running_worker("examples.scheduling:app", "-c", "1", "--beat") as worker:
            held += run_with_worker(client)
        held.append(stopped_cleanly(worker))
        return held
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(run(app, main))
