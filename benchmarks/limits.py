"""The limiter's cost and accuracy, at the Redis calls a worker makes.

``python -m benchmarks.limits`` (``make bench-limits``) runs on a private Redis, in this process
(no worker children: the numbers are Redis's and the calls', not a pool's):

- **cost**: 20,000 no-op jobs fetched and acked in batches of 100 by one client, for a task with
  no limiter, with a limiter that never binds (a rate of 10^6/s and a cap of 10^6), and with a
  keyed one (1,000 tenants). Jobs/s and the Redis time per job (INFO commandstats).
- **accuracy**: 4,000 jobs of a 1,000/s limiter fetched by two clients as fast as they can for
  3 s: the rate they got, and the most starts in any 1 s and 100 ms window (the rate allows
  1,000 and 100, plus 1.5 for the slots a late job keeps).
- **backlog**: 1,000 and 10,000 jobs behind a 100/s limiter: the Redis time of the fetches that
  book all their slots, per job, at both sizes.

Writes benchmarks/LIMITS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from benchmarks.harness import BENCH, WORK
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer
from errands import App
from errands.broker.types import Delivery, Outcome

__all__ = ["main"]

_NAMESPACE = "bench-limits"
_OK = msgspec.json.encode({"state": "succeeded"})
_BATCH = 100


def _app(url: str) -> App:
    app = App(url, namespace=_NAMESPACE, result_ttl=60)
    app.limiter("loose", rate="1000000/s", concurrency=1_000_000)
    app.limiter("tenant", rate="1000000/s", key=lambda tenant: tenant)
    app.limiter("tight", rate="1000/s")
    app.limiter("slow", rate="100/s")

    @app.task(name="free", ignore_result=True)
    def free(n: int) -> None: ...

    @app.task(name="loose", ignore_result=True, limits=["loose"])
    def loose(n: int) -> None: ...

    @app.task(name="tenant", ignore_result=True, limits=["tenant"])
    def tenant(n: int) -> None: ...

    @app.task(name="tight", ignore_result=True, limits=["tight"])
    def tight(n: int) -> None: ...

    @app.task(name="slow", ignore_result=True, limits=["slow"])
    def slow(n: int) -> None: ...

    return app


def _fill(app: App, task: str, count: int, *, keyed: bool = False) -> None:
    sig = app.tasks[task]
    app.enqueue_many(sig.s(f"t{n % 1000}" if keyed else n) for n in range(count))  # type: ignore[arg-type]


def _done(jobs: Sequence[Delivery]) -> list[Outcome]:
    return [Outcome(d.id, d.token, "succeeded", _OK) for d in jobs]


def _redis_us(server: BenchServer, before: dict[str, float]) -> float:
    after = _function_us(server)
    return sum(after.get(k, 0.0) - before.get(k, 0.0) for k in after)


def _function_us(server: BenchServer) -> dict[str, float]:
    stats = server.client.info("commandstats")
    return {k: float(v["usec"]) for k, v in stats.items() if k.startswith("cmdstat_fcall")}


async def _drain(app: App, count: int) -> float:
    broker = app.broker
    done = 0
    pending: list[Outcome] = []
    started = time.perf_counter()
    while done < count:
        codes, fetched = await broker.ack_and_fetch("default", pending, _BATCH, 60_000, "bench")
        assert not isinstance(codes, Exception)
        done += len(pending)
        pending = _done(fetched.jobs)
        if not fetched.jobs and done < count:
            await asyncio.sleep(0.001)
    await broker.ack("default", pending)
    wall = time.perf_counter() - started
    await broker.aclose()
    return wall


def _cost(server: BenchServer, task: str, count: int) -> dict[str, str]:
    server.reset()
    app = _app(server.url)
    _fill(app, task, count, keyed=task == "tenant")
    before = _function_us(server)
    wall = asyncio.run(_drain(app, count))
    redis_us = _redis_us(server, before)
    app.close()
    return {"jobs/s": f"{count / wall:,.0f}", "Redis µs per job": f"{redis_us / count:.1f}"}


async def _race(app: App, seconds: float) -> list[float]:
    starts: list[float] = []

    async def client(name: str) -> None:
        deadline = time.monotonic() + seconds
        pending: list[Outcome] = []
        while time.monotonic() < deadline:
            _, fetched = await app.broker.ack_and_fetch("default", pending, 10, 60_000, name)
            now = time.time()
            starts.extend(now for _ in fetched.jobs)
            pending = _done(fetched.jobs)
            if not fetched.jobs:
                due = fetched.next_due_ms
                await asyncio.sleep(min(due or 1, 5) / 1000)
        await app.broker.ack("default", pending)

    await asyncio.gather(client("a"), client("b"))
    await app.broker.aclose()
    return sorted(starts)


def _accuracy(server: BenchServer, seconds: float) -> dict[str, str]:
    server.reset()
    app = _app(server.url)
    _fill(app, "tight", 4_000)
    starts = asyncio.run(_race(app, seconds))
    app.close()
    span = starts[-1] - starts[0]
    return {
        "starts": f"{len(starts):,}",
        "rate got /s": f"{(len(starts) - 1) / span:,.0f}",
        "most in any 1 s": str(_busiest(starts, 1.0)),
        "most in any 100 ms": str(_busiest(starts, 0.1)),
    }


def _busiest(starts: Sequence[float], window_s: float) -> int:
    """The most starts in any window of `window_s` (sorted starts)."""
    busiest, j = 0, 0
    for i, at in enumerate(starts):
        while starts[j] <= at - window_s:
            j += 1
        busiest = max(busiest, i - j + 1)
    return busiest


def _backlog(server: BenchServer, count: int) -> dict[str, str]:
    server.reset()
    app = _app(server.url)
    _fill(app, "slow", count)
    before = _function_us(server)

    async def book_all() -> int:
        popped = 0
        while popped < count:  # each fetch pops 1,000: a few start, the rest are booked
            await app.broker.fetch("default", 1000, 60_000, "bench")
            popped += 1000
        await app.broker.aclose()
        return popped

    asyncio.run(book_all())
    redis_us = _redis_us(server, before)
    delayed = server.client.zcard(f"{_NAMESPACE}:{{default}}:delayed")
    app.close()
    return {
        "jobs waiting": f"{delayed:,}",
        "Redis µs per booking": f"{redis_us / count:.1f}",
        "last slot in s": f"{(count - 1) / 100:.0f}",
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.limits", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=BENCH / "LIMITS.md")
    return parser.parse_args(argv)


def _table(rows: dict[str, dict[str, str]], first: str) -> list[str]:
    columns = list(next(iter(rows.values())))
    return [
        f"| {first} | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
        *(f"| {name} | " + " | ".join(r[c] for c in columns) + " |" for name, r in rows.items()),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its report."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, _NAMESPACE, WORK).start()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        cost = {
            "no limiter": _cost(server, "free", args.jobs),
            "a limiter that never binds (rate and cap)": _cost(server, "loose", args.jobs),
            "a keyed limiter, 1,000 keys": _cost(server, "tenant", args.jobs),
        }
        print(cost, flush=True)
        accuracy = {"1,000/s, two clients": _accuracy(server, args.seconds)}
        print(accuracy, flush=True)
        backlog = {f"100/s, {n:,} sent": _backlog(server, n) for n in (1_000, 10_000)}
        print(backlog, flush=True)
        version = server.version()
    finally:
        server.stop()
    lines = [
        "# The limiter",
        "",
        f"Run on {started} by `python -m benchmarks.limits --jobs {args.jobs}` on {machine()} "
        f"(load {os.getloadavg()[0]:.2f}), {version}, errands {errands_version()}.",
        "",
        f"**Cost**: {args.jobs:,} no-op jobs fetched and acked in batches of {_BATCH} by one "
        "client in this process (ack pipelined with the next fetch, as a worker does); the Redis "
        "time is the functions' share of INFO commandstats.",
        "",
        *_table(cost, "task"),
        "",
        f"**Accuracy**: 4,000 jobs of a 1,000/s limiter, two clients fetching 10 at a time for "
        f"{args.seconds:g} s; a start is when the client got the job back (its clock, so the "
        "clients' event-loop delays of a few ms show in the short window). Redis allows 1,000 "
        "starts per second and 100 per 100 ms, plus 1.5 for the slots late jobs keep "
        "(docs/limits.md).",
        "",
        *_table(accuracy, "limiter"),
        "",
        "**Backlog**: 1,000 and 10,000 jobs behind a 100/s limiter, fetched 1,000 at a time: "
        "each fetch books a slot for every job it pops and puts it in the delayed set; the "
        "Redis time per booking, at both sizes.",
        "",
        *_table(backlog, "limiter"),
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
