"""What ``--metrics-port`` costs a worker: processing throughput with metrics on and off.

``python -m benchmarks.metrics`` (``make bench-metrics``) runs on a private Redis: a backlog of
no-op jobs (one INCR each, the benchmark's ``noop`` task) drained by ``errands worker -c 2``,
in interleaved A/B rounds of the same workload (off, on, then on, off, ...), so that a drift
of the machine (other work, thermal) reaches both sides alike. With metrics on, /metrics is
scraped every 5 s meanwhile (Prometheus's default is 15 s), and once at the end:
its job counters must add up to the jobs run. Rates are jobs/s from the first finished job to
the target (`benchmarks.workers.Workers.wait`).

Writes benchmarks/METRICS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.adapters.base import ENV_PREFIX, ENV_URL, counter_key
from benchmarks.harness import BENCH, ROOT, WORK
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer, free_port
from benchmarks.workers import BenchError, Workers, read_count
from errands.observe.metrics import WorkerMetrics
from errands.worker.pool import Assigned
from errands.worker.protocol import Finished, Job

__all__ = ["main"]

_NAMESPACE = "bench-metrics"
_START_TIMEOUT_S = 45.0
_CAP_S = 30.0
_SCRAPE_EVERY_S = 5.0
_POLL_S = 0.002
_TICKS = os.sysconf("SC_CLK_TCK")


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env[ENV_URL] = url
    env[ENV_PREFIX] = ""
    env["BENCH_NAMESPACE"] = _NAMESPACE
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _fill(n: int) -> None:
    from benchmarks.adapters.errands_adapter import _TASKS, app  # the env is set by now

    noop = _TASKS["noop"]
    for start in range(0, n, 1000):
        app.enqueue_many([noop.s() for _ in range(min(1000, n - start))])


def _jobs_counted(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "errands_jobs_succeeded_total" and s.labels.get("task") == "noop"
    )


def _scrape_until(port: int, done: threading.Event, scrapes: list[float]) -> None:
    """Fetch /metrics every few seconds as Prometheus would (read, not parsed: the driver's CPU
    is the worker's too on a small machine)."""
    while not done.wait(_SCRAPE_EVERY_S):
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                reply.read()
        except OSError:
            continue  # not serving yet
        scrapes.append(time.perf_counter() - began)


@dataclass(frozen=True)
class Drain:
    """One drain: jobs/s, and CPU µs per job of the supervisor and of its children."""

    rate: float
    supervisor_us: float
    children_us: float
    note: str = ""


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the supervisor `pid`, and of its children together."""
    return _cpu_s(pid), sum(_cpu_s(child) for child in _children(pid))


def _measure(server: BenchServer, workers: Workers, n: int) -> tuple[float, float, float]:
    """From the first finished job to the n-th: seconds, supervisor and children CPU seconds."""
    pid = workers.processes[0].pid
    deadline = time.monotonic() + _START_TIMEOUT_S
    while (first := read_count(server, counter_key())) == 0:
        if time.monotonic() > deadline:
            raise BenchError(f"no job finished within {_START_TIMEOUT_S:g}s: {workers.log_tail()}")
        time.sleep(_POLL_S)
    began, (sup0, kids0) = time.perf_counter(), _cpu(pid)
    deadline = time.monotonic() + _CAP_S
    while (count := read_count(server, counter_key())) < n:
        if time.monotonic() > deadline:
            raise BenchError(f"{count:,} of {n:,} jobs after {_CAP_S:g}s: {workers.log_tail()}")
        time.sleep(_POLL_S)
    elapsed, (sup1, kids1) = time.perf_counter() - began, _cpu(pid)
    jobs = count - first
    return jobs / elapsed, (sup1 - sup0) / jobs * 1e6, (kids1 - kids0) / jobs * 1e6


def _round(server: BenchServer, n: int, children: int, metrics: bool) -> Drain:
    """One drain of `n` jobs (with the scrape check as its note, metrics on)."""
    server.reset()
    _fill(n)
    argv = [
        sys.executable, "-m", "errands", "worker", "benchmarks.adapters.errands_adapter:app",
        "-Q", "bench", "-c", str(children), "--log-level", "warning",
    ]  # fmt: skip
    port = free_port()
    if metrics:
        argv += ["--metrics-port", str(port)]
    log = WORK / "logs" / f"metrics-{'on' if metrics else 'off'}.log"
    workers = Workers([argv], _env(server.url), ROOT, log)
    done = threading.Event()
    scrapes: list[float] = []
    scraper = threading.Thread(target=_scrape_until, args=(port, done, scrapes), daemon=True)
    if metrics:
        scraper.start()
    note = ""
    try:
        rate, supervisor_us, children_us = _measure(server, workers, n)
        if metrics:
            done.set()
            scraper.join()
            counted = _jobs_counted(port)
            ran = read_count(server, counter_key())
            slowest = max(scrapes, default=0.0) * 1000
            note = f"/metrics: {counted:,.0f} succeeded of {ran:,} run, {len(scrapes)} scrapes "
            note += f"(slowest {slowest:.1f} ms)"
    finally:
        done.set()
        workers.stop()
    return Drain(rate, supervisor_us, children_us, note)


def counting_us() -> float:
    """µs per job of the counting itself: a start and an outcome, in batches of 64 (best of 5)."""
    recorder = WorkerMetrics("bench", lambda: 0, lambda: 0)
    ids = [f"job-{i}" for i in range(64)]
    assigned = [Assigned(Job(i, b"", 1), "noop", 60.0, is_async=False) for i in ids]
    finished = [Finished(i, "succeeded", b"", run_s=0.0003, wait_s=0.2) for i in ids]
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(500):
            recorder.started("bench", assigned)
            recorder.finished(finished)
        best = min(best, time.perf_counter() - began)
    return best / (500 * 64) * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the A/B rounds and write benchmarks/METRICS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=8, help="Pairs of runs (off and on).")
    parser.add_argument("--children", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "METRICS.md")
    args = parser.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, "", WORK).start()
    os.environ.update(_env(server.url))
    pairs: list[tuple[Drain, Drain]] = []
    lines: list[str] = []
    try:
        for index in range(args.rounds):
            order = (False, True) if index % 2 == 0 else (True, False)
            pair: dict[bool, Drain] = {}
            for metrics in order:
                drain = pair[metrics] = _round(server, args.jobs, args.children, metrics)
                print(
                    f"round {index + 1} metrics {'on ' if metrics else 'off'}: "
                    f"{drain.rate:,.0f}/s, supervisor {drain.supervisor_us:.1f} µs/job"
                )
            off, on = pair[False], pair[True]
            pairs.append((off, on))
            first = "off, on" if order[0] is False else "on, off"
            lines.append(
                f"| {index + 1} | {first} | {off.rate:,.0f} | {on.rate:,.0f} | "
                f"{on.rate / off.rate - 1:+.1%} | {off.supervisor_us:.1f} | "
                f"{on.supervisor_us:.1f} | {off.children_us:.1f} | {on.children_us:.1f} | "
                f"{on.note} |"
            )
    finally:
        server.stop()
    rate_off = statistics.median(p[0].rate for p in pairs)
    rate_on = statistics.median(p[1].rate for p in pairs)
    sup_off = statistics.median(p[0].supervisor_us for p in pairs)
    sup_on = statistics.median(p[1].supervisor_us for p in pairs)
    ratios = [on.rate / off.rate - 1 for off, on in pairs]
    cpu_ratios = [on.supervisor_us / off.supervisor_us - 1 for off, on in pairs]
    counting = counting_us()
    report = [
        "# Metrics: what `--metrics-port` costs processing",
        "",
        f"`make bench-metrics` (`python -m benchmarks.metrics`), {dt.date.today().isoformat()}, "
        f"errands {errands_version()}, {machine()}.",
        "",
        f"{args.jobs:,} no-op jobs (one INCR each) drained by `errands worker -c "
        f"{args.children}` from a private Redis, {args.rounds} interleaved pairs of the same "
        "workload without and with `--metrics-port` (scraped every 5 s meanwhile: three times "
        "as often as Prometheus's default). "
        "Jobs/s from the first finished job to the last.",
        "",
        "CPU: µs per job of the supervisor (where metrics are counted) and of its children "
        "together, from /proc over the same stretch.",
        "",
        "| round | order | off jobs/s | on jobs/s | on vs off | supervisor off | supervisor on "
        "| children off | children on | /metrics at the end (on) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        f"**Medians**: off {rate_off:,.0f} jobs/s, on {rate_on:,.0f} jobs/s "
        f"({rate_on / rate_off - 1:+.1%}; median of the pairs' differences "
        f"{statistics.median(ratios):+.1%}); supervisor CPU {sup_off:.1f} µs/job off, "
        f"{sup_on:.1f} on ({sup_on / sup_off - 1:+.1%}; median of the pairs' differences "
        f"{statistics.median(cpu_ratios):+.1%}).",
        "",
        "The pairs' differences are the figures to read: both runs of a pair share the "
        "machine's state of the moment. The machine was shared with other work while this ran "
        "(the spread of the off runs alone shows how much).",
        "",
        f"**The counting itself**, in this process without a worker: {counting:.2f} µs per job "
        f"(a start and an outcome, batches of 64, best of 5): {counting / sup_off:.1%} of the "
        "supervisor's CPU per job with metrics off.",
        "",
    ]
    args.out.write_text("\n".join(report))
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
