"""What the event stream costs, off and on, at the Redis calls a worker makes.

``python -m benchmarks.events`` runs on a private Redis, in this process (no worker children:
the numbers are Redis's and the calls'): `--jobs` no-op jobs enqueued in batches of 200, then
fetched and acked in batches of 100 by one client (the ack pipelined with the next fetch, as a
worker does), with ``events_maxlen`` 0 (off, the default) and 10,000 (on: four events a job,
enqueued, started, succeeded, trimmed with ``MAXLEN ~``), alternating for `--rounds` rounds so
that a shared machine's drift falls on both. Jobs/s of the drain and the Redis time per job of
all three calls (INFO commandstats). Writes benchmarks/EVENTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import BENCH, WORK
from benchmarks.limits import _drain, _function_us, _redis_us
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer
from errands import App

__all__ = ["main"]

_NAMESPACE = "bench-events"
_BATCH = 100  # as benchmarks.limits drains


def _app(url: str, events_maxlen: int) -> App:
    app = App(url, namespace=_NAMESPACE, result_ttl=60, events_maxlen=events_maxlen)

    @app.task(name="noop", ignore_result=True)
    def noop(n: int) -> None: ...

    return app


def _round(server: BenchServer, events_maxlen: int, count: int) -> tuple[float, float, int]:
    """(jobs/s of the drain, Redis µs per job of enqueue + fetch + ack, events kept)."""
    server.reset()
    app = _app(server.url, events_maxlen)
    before = _function_us(server)
    noop = app.tasks["noop"]
    app.enqueue_many(noop.s(n) for n in range(count))
    wall = asyncio.run(_drain(app, count))
    redis_us = _redis_us(server, before)
    kept = int(server.client.xlen(f"{_NAMESPACE}:{{default}}:events"))
    app.close()
    return count / wall, redis_us / count, kept


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.events", description=__doc__)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "EVENTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the A/B and write its report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, _NAMESPACE, WORK).start()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs: dict[str, list[tuple[float, float, int]]] = {"off": [], "on (10,000 kept)": []}
    try:
        for _ in range(args.rounds):
            for name, maxlen in (("off", 0), ("on (10,000 kept)", 10_000)):
                runs[name].append(_round(server, maxlen, args.jobs))
                print(name, runs[name][-1], flush=True)
        version = server.version()
    finally:
        server.stop()
    lines = [
        "# The event stream",
        "",
        f"Run on {started} by `python -m benchmarks.events --jobs {args.jobs} --rounds "
        f"{args.rounds}` on {machine()} (load {os.getloadavg()[0]:.2f}: a shared machine, "
        f"other work ran meanwhile), {version}, errands {errands_version()}.",
        "",
        f"{args.jobs:,} no-op jobs enqueued (batches of 200), then fetched and acked in batches "
        f"of {_BATCH} by one client in this process, events off and on in turn, {args.rounds} "
        "rounds each; the median round, and the range. Redis time: the functions' share of "
        "INFO commandstats for the enqueue, fetch and ack calls.",
        "",
        "| events | jobs/s (drain) | Redis µs per job | events kept |",
        "|---|---|---|---|",
    ]
    for name, rounds in runs.items():
        rates = [r[0] for r in rounds]
        costs = [r[1] for r in rounds]
        lines.append(
            f"| {name} | {statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) "
            f"| {statistics.median(costs):.1f} ({min(costs):.1f}-{max(costs):.1f}) "
            f"| {rounds[-1][2]:,} |"
        )
    lines.append("")
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
