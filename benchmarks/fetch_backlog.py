"""Does a fetch stay cheap as the backlog grows? Latency of fetch+ack at 10k, 100k and 1M jobs.

The design promises that a Redis Functions call costs about the same with a million jobs queued
as with a few: ready is a ZSET popped from its head, every loop inside a script is bounded. This
fills one queue with jobs of mixed priorities (bulk enqueue, 1,000 a call), then times, at each
backlog size:

- fetch(n=1) then ack of that job: the path of a worker with one free slot;
- fetch(n=100): a worker filling its slots after a backlog built up (the 100 jobs are released
  afterwards, untimed, so the backlog keeps its size).

It prints p50 and p99 in milliseconds and the ratio of the p50 at the largest backlog to the
p50 at the smallest: about 1 means the cost does not grow with the backlog.

Usage::

    python -m benchmarks.fetch_backlog                      # private redis-server, 10k/100k/1M
    python -m benchmarks.fetch_backlog --sizes 100,1000     # a quick look
    python -m benchmarks.fetch_backlog --url redis://127.0.0.1:6379/0 --namespace bench-x

Without ``--url`` it starts its own ``redis-server`` (no persistence) on a free loopback port in
a temporary folder, or the embedded Valkey of `errands.embedded` where ``redis-server`` is
missing, and stops it at the end. With ``--url`` it works under ``--namespace`` on that server
and deletes its keys at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from errands.broker.redis import RedisBroker
from errands.broker.types import Lease, NewJob, Outcome
from errands.embedded import EmbeddedServer, redis_answers

QUEUE = "backlog"
BATCH = 1_000
LEASE_MS = 60_000
WORKER = "bench-worker"
WARMUP = 10
OUTCOME = json.dumps({"state": "succeeded", "result": None}).encode()


@dataclass(frozen=True)
class Row:
    """The measurements at one backlog size (latencies in milliseconds)."""

    backlog: int
    fill_s: float
    used_memory_mb: float
    one_p50: float
    one_p99: float
    hundred_p50: float
    hundred_p99: float


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def private_server() -> Iterator[str]:
    """A redis-server of our own (or the embedded Valkey); yields its URL, stops it at the end."""
    folder = Path(tempfile.mkdtemp(prefix="errands-bench-"))
    try:
        binary = shutil.which("redis-server")
        if binary is None:
            with EmbeddedServer(folder) as embedded:
                yield embedded.url
            return
        port = free_port()
        argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(folder), "--logfile", "redis.log"]
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10.0
            while not redis_answers("127.0.0.1", port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {folder / 'redis.log'}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-1) of `values`."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def fill(broker: RedisBroker, count: int, rng: random.Random, start: int) -> None:
    """Enqueue `count` jobs of mixed priorities, `BATCH` per call."""
    for first in range(start, start + count, BATCH):
        jobs = [
            NewJob(
                id=f"{n:016x}",
                payload=b'{"id":"%016x","task":"bench.noop","queue":"backlog","args":[%d]}'
                % (n, n),
                priority=rng.randrange(10),
                ignore_result=True,
            )
            for n in range(first, min(first + BATCH, start + count))
        ]
        broker.enqueue(QUEUE, jobs)


async def time_fetch_one_and_ack(broker: RedisBroker, samples: int) -> list[float]:
    """Milliseconds of fetch(n=1) + ack of the job, `samples` times."""
    took: list[float] = []
    for _ in range(samples):
        started = time.perf_counter()
        fetched = await broker.fetch(QUEUE, 1, LEASE_MS, WORKER)
        job = fetched.jobs[0]
        await broker.ack(QUEUE, [Outcome(job.id, job.token, "succeeded", OUTCOME)])
        took.append((time.perf_counter() - started) * 1000)
    return took


async def time_fetch_hundred(broker: RedisBroker, samples: int) -> list[float]:
    """Milliseconds of fetch(n=100), `samples` times; the jobs are released, untimed."""
    took: list[float] = []
    for _ in range(samples):
        started = time.perf_counter()
        fetched = await broker.fetch(QUEUE, 100, LEASE_MS, WORKER)
        took.append((time.perf_counter() - started) * 1000)
        if len(fetched.jobs) != 100:
            raise RuntimeError(f"fetch(n=100) got {len(fetched.jobs)} jobs: the backlog ran dry")
        await broker.release(QUEUE, [Lease(job.id, job.token) for job in fetched.jobs])
    return took


def measure(url: str, namespace: str, sizes: Sequence[int], samples: int) -> list[Row]:
    """Fill the queue to each size in turn and time the fetch paths there."""
    broker = RedisBroker(url, namespace=namespace)
    client = redis.Redis.from_url(url)
    loop = asyncio.new_event_loop()
    rng = random.Random(1)
    rows: list[Row] = []
    sent = 0
    try:
        broker.load_library()  # as a worker does at start, so no sample pays for it
        for size in sorted(sizes):
            started = time.perf_counter()
            missing = size - broker.inspector.queue(QUEUE).ready
            fill(broker, missing, rng, sent)
            sent += missing
            fill_s = time.perf_counter() - started
            memory_mb = int(client.info("memory")["used_memory"]) / 2**20
            # A few untimed rounds first, so that no sample pays for a cold cache or connection.
            loop.run_until_complete(time_fetch_one_and_ack(broker, WARMUP))
            loop.run_until_complete(time_fetch_hundred(broker, WARMUP))
            one = loop.run_until_complete(time_fetch_one_and_ack(broker, samples))
            hundred = loop.run_until_complete(time_fetch_hundred(broker, samples))
            rows.append(
                Row(
                    backlog=size,
                    fill_s=fill_s,
                    used_memory_mb=memory_mb,
                    one_p50=percentile(one, 0.50),
                    one_p99=percentile(one, 0.99),
                    hundred_p50=percentile(hundred, 0.50),
                    hundred_p99=percentile(hundred, 0.99),
                )
            )
            print(f"  {size:>9,} jobs measured", flush=True)
    finally:
        loop.run_until_complete(broker.aclose())
        loop.close()
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.unlink(key)
        client.close()
        broker.close()
    return rows


def report(rows: Sequence[Row], samples: int) -> str:
    """The table, and the growth of the p50 from the smallest backlog to the largest."""
    lines = [
        f"fetch latency against backlog size ({samples} calls each, milliseconds)",
        "",
        "   backlog   fill s   Redis MB | fetch1+ack p50    p99 | fetch100 p50    p99",
        "-" * 78,
    ]
    lines += [
        f"{r.backlog:>10,} {r.fill_s:>8.1f} {r.used_memory_mb:>10.0f} | "
        f"{r.one_p50:>15.3f} {r.one_p99:>6.3f} | {r.hundred_p50:>12.3f} {r.hundred_p99:>6.3f}"
        for r in rows
    ]
    small, large = rows[0], rows[-1]
    lines += [
        "",
        f"p50({large.backlog:,}) / p50({small.backlog:,}): "
        f"fetch1+ack {large.one_p50 / small.one_p50:.2f}, "
        f"fetch100 {large.hundred_p50 / small.hundred_p50:.2f}",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fetch_backlog", description=__doc__)
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        type=lambda text: [int(part) for part in text.split(",")],
        help="backlog sizes, comma-separated (default: 10000,100000,1000000)",
    )
    parser.add_argument("--samples", type=int, default=300, help="timed calls per path and size")
    parser.add_argument("--url", help="use this Redis server instead of starting one")
    parser.add_argument("--namespace", help="key namespace (default: a fresh one)")
    args = parser.parse_args(argv)
    if min(args.sizes) < 100 or args.samples < 1:
        parser.error("every size must be at least 100 (fetch(n=100) needs them) and samples >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    namespace = args.namespace or f"errands-bench-{os.urandom(4).hex()}"
    if args.url:
        rows = measure(args.url, namespace, args.sizes, args.samples)
    else:
        with private_server() as url:
            rows = measure(url, namespace, args.sizes, args.samples)
    print(report(rows, args.samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
