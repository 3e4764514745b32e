"""What a read of the operator's model costs as a queue grows: a page of dead jobs, a job, a queue.

``python -m benchmarks.inspector`` (``make bench-inspector``) fills the dead set of a private
Redis to each size (100, 10,000, 100,000 jobs by default), dying 1,000 at a time (one time of
death per batch, the ties a cursor must step through), then times each read many times:

- the oldest page and the newest page of 50, a page from the middle (a cursor into it), and a
  page filtered by a task one job in a hundred has (it looks at `DEAD_SCAN` entries, then stops);
- one dead job's whole record, and the queue's summary (1,000 jobs ready besides).

It reports the median and 95th percentile wall time per read (the round trip included) and
Redis's own time per call (``INFO commandstats``, ``fcall_ro``), and writes
benchmarks/INSPECTOR.md. A page is served in constant time when its cost at 100,000 jobs is
that at 100, within noise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import BENCH, WORK
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer
from errands.broker.reading import dead_cursor
from errands.broker.redis import RedisBroker
from errands.broker.settings import BrokerSettings
from errands.broker.types import NewJob, Outcome
from errands.broker.views import DEAD_SCAN, DeadFilter
from errands.message import JobRecord, encode_record

__all__ = ["main"]

_NAMESPACE = "bench-inspector"
_QUEUE = "dead"
_BATCH = 1000  # jobs that die in one ack: one time of death
_RARE_EVERY = 100  # one job in this many has the rare task the filtered page asks for
_READY = 1000  # jobs left ready besides, for the queue summary


def _payload(job_id: str, task: str) -> bytes:
    record = JobRecord(
        id=job_id, task=task, queue=_QUEUE, args=[job_id, 7], enqueued_at=time.time()
    )
    return encode_record(record, 1 << 20)


def _failed(attempt: int) -> bytes:
    return (
        b'{"state":"failed","attempts":%d,"error":{"type":"KeyError","message":"no sku",'
        b'"traceback":"Traceback (most recent call last):\\n  ...\\nKeyError: no sku"}}' % attempt
    )


async def _fill(broker: RedisBroker, dead: int) -> None:
    """Enqueue `dead` jobs with one attempt each and fail them, `_BATCH` per ack."""
    for start in range(0, dead, _BATCH):
        jobs = [
            NewJob(
                id=f"j{i:07}",
                payload=_payload(f"j{i:07}", "rare.task" if i % _RARE_EVERY == 0 else "bulk.task"),
                max_attempts=1,
            )
            for i in range(start, min(start + _BATCH, dead))
        ]
        broker.enqueue(_QUEUE, jobs)
        fetched = await broker.fetch(_QUEUE, len(jobs), 600_000, "bench")
        outcomes = [Outcome(d.id, d.token, "failed", _failed(d.attempt)) for d in fetched.jobs]
        await broker.ack(_QUEUE, outcomes)
    ready = [
        NewJob(id=f"r{i:05}", payload=_payload(f"r{i:05}", "bulk.task")) for i in range(_READY)
    ]
    broker.enqueue(_QUEUE, ready)


def _timed(read: Callable[[], Any], repeat: int) -> list[float]:
    times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1e6)
    return times


def _measure(server: BenchServer, broker: RedisBroker, dead: int, repeat: int) -> dict[str, Any]:
    inspector = broker.inspector
    client = server.client
    middle: list[tuple[bytes, float]] = client.zrange(  # type: ignore[assignment]
        broker.keys(_QUEUE).prefix + "dead", dead // 2, dead // 2, withscores=True
    )
    cursor = dead_cursor(middle[0][1], 0)
    rare = DeadFilter(task="rare.task")
    reads: dict[str, Callable[[], Any]] = {
        "oldest page of 50": lambda: inspector.dead(_QUEUE, limit=50),
        "newest page of 50": lambda: inspector.dead(_QUEUE, limit=50, newest_first=True),
        "page of 50 from the middle": lambda: inspector.dead(_QUEUE, limit=50, cursor=cursor),
        "page filtered by a 1% task": lambda: inspector.dead(_QUEUE, where=rare, limit=50),
        "one dead job's record": lambda: inspector.job(_QUEUE, f"j{dead // 2:07}"),
        "queue summary": lambda: inspector.queue(_QUEUE),
    }
    results: dict[str, Any] = {}
    for name, read in reads.items():
        read()  # the library is loaded, the connection open
        server.reset_stats()
        times = _timed(read, repeat)
        stats = client.info("commandstats").get("cmdstat_fcall_ro", {})
        results[name] = {
            "p50_us": statistics.median(times),
            "p95_us": statistics.quantiles(times, n=20)[-1],
            "redis_us": float(stats.get("usec_per_call", 0.0)),
        }
    page = inspector.dead(_QUEUE, where=rare, limit=50)
    results["filtered page holds"] = len(page.items)
    return results


def _report(sizes: Sequence[int], rows: dict[int, dict[str, Any]], meta: dict[str, str]) -> str:
    names = [k for k in rows[sizes[0]] if isinstance(rows[sizes[0]][k], dict)]
    lines = [
        "# The inspector's reads as the dead set grows",
        "",
        "Generated by `benchmarks/inspector.py` (see its docstring for what each read is).",
        "",
        f"- Command: `{meta['command']}`",
        f"- Started: {meta['started']}",
        f"- Machine: {meta['machine']}; load average (1 min) {meta['load']}",
        f"- Server: {meta['server']}, private, no persistence",
        f"- errands: {meta['errands']}",
        f"- Each read timed {meta['repeat']} times: wall time per read in µs (median, p95), "
        "round trip included, and Redis's own time per call (µs, `fcall_ro` usec_per_call)",
        "",
        "| read | " + " | ".join(f"{n:,} dead: p50 / p95 / Redis" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name in names:
        cells = [
            f"{rows[n][name]['p50_us']:,.0f} / {rows[n][name]['p95_us']:,.0f} / "
            f"{rows[n][name]['redis_us']:,.0f}"
            for n in sizes
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    held = ", ".join(f"{rows[n]['filtered page holds']} at {n:,}" for n in sizes)
    scan = f"it looks at {DEAD_SCAN} entries at most: `errands.broker.views.DEAD_SCAN`"
    lines += ["", f"The filtered page held {held} jobs ({scan})."]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inspector", description=__doc__)
    parser.add_argument("--sizes", default="100,10000,100000", help="dead-set sizes, commas")
    parser.add_argument("--repeat", type=int, default=300, help="reads timed per kind")
    parser.add_argument("--out", type=Path, default=BENCH / "INSPECTOR.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, _NAMESPACE, WORK).start()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows: dict[int, dict[str, Any]] = {}
    try:
        for size in sizes:
            server.reset()
            settings = BrokerSettings(dead_max_count=max(sizes) * 2)
            broker = RedisBroker(server.url, namespace=_NAMESPACE, settings=settings)
            filled = time.perf_counter()
            asyncio.run(_fill_and_close(broker, size))
            print(f"{size:,} dead jobs in {time.perf_counter() - filled:.1f} s", flush=True)
            rows[size] = _measure(server, broker, size, args.repeat)
            for name, row in rows[size].items():
                print(f"  {name}: {row}", flush=True)
            broker.close()
        meta = {
            "command": "python -m benchmarks.inspector " + " ".join(sys.argv[1:]),
            "started": started,
            "machine": machine(),
            "load": f"{os.getloadavg()[0]:.2f}",
            "server": server.version(),
            "errands": errands_version(),
            "repeat": str(args.repeat),
        }
    finally:
        server.stop()
    args.out.write_text(_report(sizes, rows, meta))
    print(f"wrote {args.out}")
    return 0


async def _fill_and_close(broker: RedisBroker, size: int) -> None:
    try:
        await _fill(broker, size)
    finally:
        await broker.aclose()


if __name__ == "__main__":
    sys.exit(main())
