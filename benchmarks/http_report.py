"""What one run of the HTTP benchmark measured (`Side`, `Run`, `Ceilings`) and HTTP.md from it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.loadgen import ClosedLoop, OpenLoop

__all__ = ["NEEDED_P99_MS", "NEEDED_RATIO", "Ceilings", "Run", "Side", "write_report"]

#: What the issue asks of errands: this many times Flower's rate, this p99 at half its own.
NEEDED_RATIO = 5.0
NEEDED_P99_MS = 10.0


@dataclass
class Run:
    """One wrk run of a side and what Redis held afterwards.

    Attributes:
        load: what wrk saw.
        counted: jobs the run added in Redis.
        server_cpu_s: CPU seconds the HTTP server's process used.
        redis_cpu_s: CPU seconds Redis used.
    """

    load: ClosedLoop
    counted: int
    server_cpu_s: float
    redis_cpu_s: float

    @property
    def all_counted(self) -> bool:
        """Every answer was a 2xx, and Redis holds a job for each one (at most one per send).

        A request still in flight when wrk stops may have been enqueued without its answer
        being read, so the count lies between the 2xx answers and the requests sent.
        """
        load = self.load
        return load.answered == load.ok and load.ok <= self.counted <= load.sent


@dataclass
class Side:
    """One system's server and its runs.

    Attributes:
        name: errands or Flower.
        route: the route it was loaded on.
        runs: the wrk runs, one per connection count.
        open: the open-loop run at half the maximum rate (errands only).
        open_counted: jobs the open-loop run added in Redis.
        open_server_cpu_s: CPU seconds the server used during the open-loop run.
        error: why the side could not run ("" when it ran).
    """

    name: str
    route: str
    runs: list[Run] = field(default_factory=list)
    open: OpenLoop | None = None
    open_counted: int = 0
    open_server_cpu_s: float = 0.0
    error: str = ""

    @property
    def best(self) -> Run | None:
        """The run with the highest 2xx rate."""
        return max(self.runs, key=lambda run: run.load.rate, default=None)

    @property
    def median(self) -> Run | None:
        """The run of the median 2xx rate (the lower middle one of an even count)."""
        ordered = sorted(self.runs, key=lambda run: run.load.rate)
        return ordered[(len(ordered) - 1) // 2] if ordered else None

    @property
    def median_rate(self) -> float:
        """The median run's 2xx rate, requests per second (0 without runs)."""
        run = self.median
        return run.load.rate if run else 0.0


@dataclass
class Ceilings:
    """The generators against the null server.

    Attributes:
        wrk: wrk at the largest connection count.
        floor: the open-loop generator at errands' open-loop rate (its own latency).
        top: the open-loop generator at a high rate (it keeps up when all are answered soon).
    """

    wrk: ClosedLoop | None = None
    floor: OpenLoop | None = None
    top: OpenLoop | None = None


def _cores(cpu_s: float, wall_s: float) -> str:
    return f"{cpu_s / wall_s:.2f}" if wall_s else "-"


def _verdict(ok: bool) -> str:
    return "**yes**" if ok else "**NO**"


def _open_row(label: str, run: OpenLoop, counted: str, server_cores: str) -> str:
    q = run.quantiles_ms()
    achieved = run.answered / run.duration_s
    over = sum(1 for latency in run.latencies_s if latency > NEEDED_P99_MS / 1e3)
    share = over / max(len(run.latencies_s), 1)
    return (
        f"| {label} | {run.rate:,.0f} | {achieved:,.0f} | {run.answered:,} | {run.ok:,} | "
        f"{counted} | {q['p50']:.2f} | {q['p99']:.2f} | {q['p99.9']:.2f} | {q['max']:.2f} | "
        f"{share:.1%} | {server_cores} | {_cores(run.cpu_s, run.duration_s)} |"
    )


def _verdicts(sides: list[Side]) -> list[str]:
    errands = next((s for s in sides if s.name == "errands"), None)
    flower = next((s for s in sides if s.name == "Flower"), None)
    lines = ["## Verdict", ""]
    for side in sides:
        if side.error:
            lines.append(f"- {side.name} did not run: {side.error}")
    mine = errands.median if errands else None
    theirs = flower.median if flower else None
    if mine and theirs and theirs.load.rate and errands and flower:
        ratio = mine.load.rate / theirs.load.rate
        best = errands.best.load.rate if errands.best else 0.0
        their_best = flower.best.load.rate if flower.best else 0.0
        lines.append(
            f"- Maximum sustained rate, the median of {len(errands.runs)} runs each: errands "
            f"{mine.load.rate:,.0f}/s, Flower {theirs.load.rate:,.0f}/s: **{ratio:.1f}x** "
            f"(at least {NEEDED_RATIO:g}x asked): {_verdict(ratio >= NEEDED_RATIO)}; best runs "
            f"{best:,.0f}/s and {their_best:,.0f}/s"
        )
    if mine and theirs and mine.load.answered and theirs.load.answered:
        mine_us = mine.server_cpu_s / mine.load.answered * 1e6
        theirs_us = theirs.server_cpu_s / theirs.load.answered * 1e6
        lines.append(
            f"- Server CPU per request in those runs (what a busy machine changes least): "
            f"errands {mine_us:,.0f} µs, Flower {theirs_us:,.0f} µs: "
            f"{theirs_us / mine_us:.1f}x less for errands"
        )
    if errands and errands.open:
        q = errands.open.quantiles_ms()
        lines.append(
            f"- errands at half its maximum ({errands.open.rate:,.0f}/s, open loop, "
            f"{errands.open.duration_s:g} s): p50 {q['p50']:.2f} ms, p99 **{q['p99']:.2f} ms**, "
            f"p99.9 {q['p99.9']:.2f} ms (p99 under {NEEDED_P99_MS:g} ms asked): "
            f"{_verdict(q['p99'] < NEEDED_P99_MS)}"
        )
    runs = [run for side in sides for run in side.runs]
    counted = all(run.all_counted for run in runs)
    if errands and errands.open:
        run = errands.open
        counted = counted and run.ok == run.answered == errands.open_counted
        counted = counted and run.answered == int(run.rate * run.duration_s)
    lines.append(
        "- Every request answered 2xx, and every answer a job counted in Redis afterwards: "
        + _verdict(counted and bool(runs))
    )
    return lines


def write_report(
    out: Path,
    sides: list[Side],
    ceilings: Ceilings,
    meta: dict[str, str],
    options: argparse.Namespace,
) -> None:
    """Write HTTP.md for the run."""
    lines = [
        "# Enqueue over HTTP: errands' API against Flower's async-apply",
        "",
        "Generated by `benchmarks/http.py` (its docstring says what each step does).",
        "",
        f"- Command: `{meta['command']}` (`make bench-http`), {meta['wall_s']} s",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['machine']}; load average (1 min) {meta['load_start']} at the start, "
        f"{meta['load_end']} at the end",
        f"- Redis: {meta.get('server', '?')}, private, on a free loopback port, no persistence",
        f"- errands: {meta['errands']}, `errands api` (uvicorn, one worker, uvloop and httptools)",
        "- Flower 2.2.0 on Celery 5.7.0 and kombu 5.7.0 (`benchmarks/peers-flower.txt`), no "
        "result backend (its fastest async-apply: publish only), `--logging=warning`",
        "- Both servers, wrk, the generator and Redis share the machine's 2 cores, nothing "
        "pinned; the sides run one after the other, never together. Each server is one "
        "process (at most one core: one uvicorn worker; Flower's one tornado process), Redis "
        "another, wrk 2 threads. The cores each used are in the tables (CPU seconds over wall "
        "seconds); CPU per request reads the same whatever else the machine runs, a rate and "
        "a tail latency do not: the load average above says how busy it was.",
        "",
        *_verdicts(sides),
        "",
        "## Maximum sustained rate (wrk, keep-alive connections, closed loop)",
        "",
        f"wrk 4.1 with 2 threads, {options.duration:g} s per run after a 2 s warm-up, "
        f"{options.rounds} rounds, the sides interleaved (errands, Flower, errands, ...), each "
        "run on a freshly started server; the body "
        '`{"args": [1, 2]}` for the task `add(x: int, y: int)`. *In Redis*: jobs the run added '
        "(errands' ready count; the length of Celery's list `celery`); a request in flight when "
        "wrk stops may be enqueued without its answer being read, so it lies between the 2xx "
        "answers and the requests sent.",
        "",
        "| side | connections | sent | answered | 2xx | in Redis | 2xx/s | server cores | "
        "server CPU µs per request | Redis cores | wrk cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        for run in side.runs:
            load = run.load
            lines.append(
                f"| {side.name} | {load.connections} | {load.sent:,} | {load.answered:,} | "
                f"{load.ok:,} | {run.counted:,} | **{load.rate:,.0f}** | "
                f"{_cores(run.server_cpu_s, load.duration_s)} | "
                f"{run.server_cpu_s / max(load.answered, 1) * 1e6:,.0f} | "
                f"{_cores(run.redis_cpu_s, load.duration_s)} | "
                f"{_cores(load.cpu_s, load.duration_s)} |"
            )
    lines += [
        "",
        "Routes: " + "; ".join(f"{side.name} `{side.route}`" for side in sides) + ".",
        "",
        "## Latency at half of errands' maximum rate (open loop)",
        "",
        "The generator (`benchmarks/loadgen.py`, asyncio on uvloop, 32 keep-alive connections) "
        "schedules one request every 1/rate s and takes each latency from that intended time, "
        "so a stall of the server counts for every request scheduled during it (no coordinated "
        "omission). The null-server rows are the generator alone: its own latency at the same "
        "rate, and a much higher rate it still keeps up with. Latencies in ms.",
        "",
        "| target | rate/s | achieved/s | answered | 2xx | in Redis | p50 | p99 | p99.9 | max | "
        f"over {NEEDED_P99_MS:g} ms | server cores | generator cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    errands = next((s for s in sides if s.name == "errands"), None)
    if errands and errands.open:
        open_run = errands.open
        lines.append(
            _open_row(
                "errands",
                open_run,
                f"{errands.open_counted:,}",
                _cores(errands.open_server_cpu_s, open_run.duration_s),
            )
        )
    for label, null_run in (("null server", ceilings.floor), ("null server", ceilings.top)):
        if null_run is not None:
            lines.append(_open_row(label, null_run, "-", "-"))
    lines += ["", "## The generators' ceiling", ""]
    mine = errands.median if errands else None
    if ceilings.wrk is not None:
        times = f" ({ceilings.wrk.rate / mine.load.rate:.0f}x errands' maximum)" if mine else ""
        lines.append(
            f"- wrk against the null server ({ceilings.wrk.connections} connections): "
            f"{ceilings.wrk.rate:,.0f} requests/s{times}, wrk using "
            f"{_cores(ceilings.wrk.cpu_s, ceilings.wrk.duration_s)} cores; the null server is "
            "one Python process, so this is a floor of wrk's ceiling."
        )
    if ceilings.top is not None:
        top = ceilings.top
        lines.append(
            f"- The open-loop generator on the null server at {top.rate:,.0f}/s: "
            f"{top.answered / top.duration_s:,.0f}/s answered, p99 "
            f"{top.quantiles_ms()['p99']:.2f} ms."
        )
    out.write_text("\n".join(lines) + "\n")
