# ruff: noqa: A005 - only ever run as `python -m benchmarks.logging`: no stdlib import sees it
"""What the per-job log line costs a worker in processing throughput.

``python -m benchmarks.logging`` (``make bench-logging``) runs on a private Redis: the same
workload (``--jobs`` no-op jobs, ``ignore_result``, queued before the worker starts) drained by
``errands worker -c 2`` with ``--log-jobs all`` (console lines, and JSON lines), ``failures``
and ``none``, its stderr redirected to a file as a service manager would. The variants run in
interleaved rounds (A B C D, A B C D, ...) in one run, so that a machine whose load drifts
drifts for all of them; each round is timed from the first job done to the queue drained (the
worker's start is not counted), and the report gives the median of the rounds and each
variant's cost against ``none``. Then the line alone: the CPU time this process spends writing
``--lines`` success lines to a file, console and JSON, less sensitive to a busy machine.

Writes benchmarks/LOGGING.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import BENCH, ROOT, WORK
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer
from errands import App
from errands.observe.logging import LogFormat, configure_logging
from errands.worker.outcome_log import OutcomeLog
from errands.worker.protocol import Finished

__all__ = ["app", "main"]

_NAMESPACE = "bench-logging"
_QUEUE = "bench"
_URL_ENV = "BENCH_LOGGING_URL"
_POLL_S = 0.005
_ROUND_CAP_S = 60.0
_LINES = 20_000
_STOP_S = 5.0

app = App(
    os.environ.get(_URL_ENV, "redis://127.0.0.1:6379/0"), namespace=_NAMESPACE, default_queue=_QUEUE
)


@app.task(name="noop", ignore_result=True)
def noop(n: int) -> None:
    """Nothing: what is measured is the worker's own work per job, its log line included."""


@dataclass(frozen=True)
class Variant:
    """One way to run the worker."""

    name: str
    args: tuple[str, ...]


VARIANTS = (
    Variant("all (console)", ("--log-jobs", "all")),
    Variant("all (json)", ("--log-jobs", "all", "--log-format", "json")),
    Variant("failures", ("--log-jobs", "failures")),
    Variant("none", ("--log-jobs", "none")),
)


def _left(client: App) -> int:
    summary = client.inspector.queue(_QUEUE)
    return summary.ready + summary.active + summary.delayed


def _round(url: str, variant: Variant, jobs: int, log_dir: Path) -> tuple[float, int]:
    """Queue `jobs`, drain them with one worker; its jobs per second and log size in bytes."""
    client = App(url, namespace=_NAMESPACE, default_queue=_QUEUE)
    try:
        for start in range(0, jobs, 1000):
            client.enqueue_many(noop.s(n) for n in range(start, min(start + 1000, jobs)))
        log_path = log_dir / f"{variant.name.replace(' ', '_').strip('()')}.log"
        env = {**os.environ, _URL_ENV: url, "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "errands", "worker", "benchmarks.logging:app", "-c", "2"]
        with log_path.open("wb") as log_file:
            worker = subprocess.Popen(
                [*argv, *variant.args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                start_new_session=True,  # its children in its group: stopped with it
            )
            try:
                first_t, first_left, last_t = _drain(client, jobs, worker)
            finally:
                _stop(worker)
        return (first_left / (last_t - first_t), log_path.stat().st_size)
    finally:
        client.close()


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its group, SIGKILL after a bound: the measurement is over, its exit is not."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=_STOP_S)
            return


def _drain(client: App, jobs: int, worker: subprocess.Popen[bytes]) -> tuple[float, int, float]:
    """Wait for the first job done, then for none left: (its time, jobs left then, end time)."""
    deadline = time.monotonic() + _ROUND_CAP_S
    while (left := _left(client)) >= jobs:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start (exit code {worker.poll()})")
        time.sleep(_POLL_S)
    first_t, first_left = time.perf_counter(), left
    while left > 0:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the round did not finish ({left} jobs left)")
        time.sleep(_POLL_S)
        left = _left(client)
    return first_t, first_left, time.perf_counter()


def _line_cost_us(fmt: LogFormat, lines: int, path: Path) -> float:
    """CPU microseconds per success line written to `path` in format `fmt` (best of 3)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    finished = Finished("3f2a9c1b2d3e4f5a6b7c8d9e0f1a2b3c", "succeeded", b"")
    best = float("inf")
    try:
        with path.open("w") as stream:
            configure_logging("info", fmt, worker="bench-host:4242:3f2a9c")
            root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
            outcomes = OutcomeLog()
            for _ in range(3):
                started = time.process_time()
                for _ in range(lines):
                    outcomes.ran("billing.charge", "default", 1, finished, 0.000123)
                best = min(best, (time.process_time() - started) / lines * 1e6)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    return best


def _report(
    rates: dict[str, list[float]],
    sizes: dict[str, int],
    jobs: int,
    rounds: int,
    server: str,
    line_us: dict[str, float],
    load: tuple[float, float],
) -> str:
    base = statistics.median(rates["none"])
    lines = [
        "# The cost of the per-job log line",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `make bench-logging` "
        f"(`python -m benchmarks.logging --jobs {jobs} --rounds {rounds}`), errands "
        f"{errands_version()}, on {machine()}, {server}.",
        "",
        f"The same workload, {jobs:,} no-op jobs (`ignore_result`) queued before the worker "
        "starts, drained by `errands worker -c 2` (process pool) with its stderr redirected to a "
        "file; the variants run in interleaved rounds in one run. A round is timed from the "
        "first job done to the queue drained. Jobs/s is the median of the rounds; the cost is "
        "against `--log-jobs none`, per job in microseconds of the worker's wall time (two "
        "children: one job's line costs its child about twice that).",
        "",
        "| `--log-jobs` | jobs/s (median) | rounds | vs none | cost per job | log per job |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        got = rates[variant.name]
        median = statistics.median(got)
        change = (median / base - 1) * 100
        cost_us = (1 / median - 1 / base) * 1e6
        each = ", ".join(f"{rate:,.0f}" for rate in got)
        lines.append(
            f"| {variant.name} | {median:,.0f} | {each} | {change:+.1f} % | {cost_us:+.1f} µs | "
            f"{sizes[variant.name] / jobs:.0f} B |"
        )
    lines += [
        "",
        "The line alone, in one process: "
        + ", ".join(f"{fmt} {us:.1f} µs" for fmt, us in line_us.items())
        + " of CPU per success line written to a file (best of 3 runs of "
        f"{_LINES:,} lines; a line is formatted and written with one `write`).",
        "",
        "Read it with the machine in mind: it has 2 cores, and other work may share them (load "
        f"average {load[0]:.1f} at the start, {load[1]:.1f} at the end of this run); the rounds "
        "of one variant show how far a measurement moves by itself.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the interleaved rounds and write benchmarks/LOGGING.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "LOGGING.md")
    args = parser.parse_args(argv)
    log_dir = WORK / "logging"
    log_dir.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, _NAMESPACE, WORK).start()
    load_at_start = os.getloadavg()[0]
    rates: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    sizes: dict[str, int] = {}
    try:
        for number in range(args.rounds):
            for variant in VARIANTS:
                rate, size = _round(server.url, variant, args.jobs, log_dir)
                rates[variant.name].append(rate)
                sizes[variant.name] = size
                print(f"round {number + 1} {variant.name}: {rate:,.0f} jobs/s", flush=True)
        line_us = {
            fmt: _line_cost_us(fmt, _LINES, log_dir / f"lines-{fmt}.log")
            for fmt in ("console", "json")
        }
        where = f"{server.kind} {server.version()}"
        load = (load_at_start, os.getloadavg()[0])
        report = _report(rates, sizes, args.jobs, args.rounds, where, line_us, load)
    finally:
        server.stop()
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
