"""The scheduler at scale: 10,000 schedules, 1,000 of them due every second.

``python -m benchmarks.beat`` (``make bench-beat``) stores 10,000 schedules on a private Redis:
1,000 fire every second, 9,000 once a day (never due during the run). One scheduler leads in
this process for ``--seconds`` (20 by default) and fires them; a middleware's `after_enqueue`
notes, for every fire, how long after its nominal time the broker had taken it (the fire's id
carries the nominal time), and the scheduler notes when the step that handled each fire ended.
It reports that lateness (p50, p99), the fires handled and sent per second, and the leader's
CPU (this process's CPU time over the wall time, in % of one core), for the overlap policy
``allow_all`` (no read before a fire) and ``skip`` (the states of the due schedules' previous
jobs are read first), and writes benchmarks/BEAT.md. Nothing runs the jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.harness import BENCH, WORK
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer
from errands import App, Middleware, Outgoing
from errands.schedule.manager import schedule_def
from errands.schedule.scheduler import Scheduler

__all__ = ["main"]

_NAMESPACE = "bench-beat"
_SCHEDULES = 10_000
_EVERY_SECOND = 1_000


class TimedScheduler(Scheduler):
    """A scheduler that notes, for every fire it handles, how late after its nominal time the
    step that handled it (sent it, or skipped it) ended."""

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self.handled_late_ms: list[float] = []

    async def _fire_due(self, now_ms: int) -> None:
        nominals = [at for at, _ in self._due if at <= now_ms]
        await super()._fire_due(now_ms)
        done = time.time() * 1000
        self.handled_late_ms += [done - at for at in nominals]


class Lateness(Middleware):
    """Notes how late after its nominal time each fire was taken by the broker."""

    def __init__(self) -> None:
        self.late_ms: list[float] = []

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        nominal_ms = int(job.id.rsplit("@", 1)[1])
        self.late_ms.append(time.time() * 1000 - nominal_ms)


def _app(url: str, lateness: Lateness) -> App:
    app = App(url, namespace=_NAMESPACE, middleware=[lateness])

    @app.task(name="bench.tick")
    def tick(n: int) -> None: ...

    return app


def _store(app: App, overlap: str) -> None:
    defs = []
    for n in range(_SCHEDULES):
        when: dict[str, Any] = {"every": 1} if n < _EVERY_SECOND else {"cron": "0 3 * * *"}
        definition = schedule_def(
            f"s{n}", "bench.tick", args=[n], overlap=overlap, origin="operator", **when
        )
        defs.append((definition.id, msgspec.json.encode(definition)))
    for start in range(0, len(defs), 500):
        app.broker.schedules.define("operator", defs[start : start + 500])


async def _lead(app: App, seconds: float, scheduler: TimedScheduler) -> tuple[float, float]:
    stopping = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stopping.set)
    wall, cpu = time.perf_counter(), time.process_time()
    await scheduler.run(stopping)
    await app.broker.aclose()
    return time.perf_counter() - wall, time.process_time() - cpu


def _measure(server: BenchServer, overlap: str, seconds: float) -> dict[str, str]:
    server.reset()
    lateness = Lateness()
    app = _app(server.url, lateness)
    _store(app, overlap)
    scheduler = TimedScheduler(app)
    wall, cpu = asyncio.run(_lead(app, seconds, scheduler))
    app.close()
    # The first second is left out: it catches up the start.
    handled = sorted(scheduler.handled_late_ms[_EVERY_SECOND:])
    sent = sorted(lateness.late_ms[_EVERY_SECOND:])
    h = statistics.quantiles(handled, n=100)
    row = {
        "fires handled/s": f"{len(scheduler.handled_late_ms) / wall:,.0f}",
        "enqueued/s": f"{len(lateness.late_ms) / wall:,.0f}",
        "handled late p50 ms": f"{h[49]:.1f}",
        "handled late p99 ms": f"{h[98]:.1f}",
        "enqueued late p99 ms": "",
        "leader CPU % of a core": f"{100 * cpu / wall:.1f}",
    }
    if len(sent) >= 100:
        row["enqueued late p99 ms"] = f"{statistics.quantiles(sent, n=100)[98]:.1f}"
    return row


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.beat", description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=BENCH / "BEAT.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, _NAMESPACE, WORK).start()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: dict[str, dict[str, str]] = {}
    try:
        for overlap in ("allow_all", "skip"):
            rows[overlap] = _measure(server, overlap, args.seconds)
            print(f"{overlap}: {rows[overlap]}", flush=True)
        version = server.version()
    finally:
        server.stop()
    columns = list(next(iter(rows.values())))
    lines = [
        "# The scheduler at scale",
        "",
        f"Run on {started} by `python -m benchmarks.beat --seconds {args.seconds:g}` on "
        f"{machine()} (load {os.getloadavg()[0]:.2f}), {version}, errands {errands_version()}.",
        "",
        f"{_SCHEDULES:,} schedules stored, {_EVERY_SECOND:,} of them due every second, one "
        f"scheduler leading for {args.seconds:g} s. *Handled late*: from a fire's nominal time "
        "to the end of the step that sent or skipped it; *enqueued late*: to the broker's "
        "answer to its enqueue (the first second, which catches up the start, is left out of "
        "both). *Leader CPU*: the scheduler process's CPU time over the wall time.",
        "",
        "| overlap | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
        *(f"| `{o}` | " + " | ".join(r[c] for c in columns) + " |" for o, r in rows.items()),
        "",
        "`skip` reads the state of each due schedule's previous job first (one pipelined round "
        "trip per step); nothing runs the jobs here, so after its first fire every fire of a "
        "schedule is skipped, and counted.",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
