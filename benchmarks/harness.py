"""The plumbing of a benchmark run: producers, fills, workers, counters and result cells.

`Harness` runs producers (``python -m benchmarks.producer``) in a system's environment, fills
queues, starts and stops worker processes, reads the INCR counter, and keeps the result cells;
`benchmarks.scenarios.Bench` builds the scenarios on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.adapters.base import ENV_PREFIX, ENV_URL, cpu_work
from benchmarks.report import Cell, Run, specs
from benchmarks.server import BenchServer
from benchmarks.workers import BenchError, Progress, Workers, read_count

__all__ = [
    "BENCH",
    "ROOT",
    "WORK",
    "Caps",
    "Harness",
    "Sizes",
    "System",
    "calibrate_cpu",
    "command_delta",
    "percentile",
]

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
WORK = BENCH / ".work"


@dataclass(frozen=True)
class Sizes:
    """How many jobs each scenario uses."""

    n: int = 20_000
    latency_n: int = 500
    cpu_n: int = 400
    async_n: int = 2_000
    memory_n: int = 100_000
    backlog: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    backlog_k: int = 2_000


@dataclass(frozen=True)
class Caps:
    """Time caps in seconds: a measurement stops there and reports what it did by then.

    They are what keeps ``make bench`` under 30 minutes on 2 cores with ten systems: a rate over
    a few seconds of steady work is as good as over all of N, and the slowest systems (RQ's
    fork per job, arq's polling) would take minutes per run otherwise.
    """

    enqueue: float = 3.0
    processing: float = 4.0
    start: float = 45.0
    latency: float = 5.0
    fill: float = 45.0
    memory_fill: float = 90.0
    backlog: float = 2.0
    cpu: float = 6.0
    async_: float = 8.0
    fetch_backlog: float = 180.0
    producer_slack: float = 60.0


@dataclass
class System:
    """One system under test, as its producer described it."""

    name: str
    python: str
    info: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    fill_rate: float = 0.0
    failures: int = 0


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def calibrate_cpu(target_s: float = 0.005) -> int:
    """Loop iterations of `cpu_work` that take `target_s` on this machine (best of 7)."""
    probe = 50_000
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        cpu_work(probe)
        best = min(best, time.perf_counter() - started)
    return max(1, int(probe * target_s / best))


class Harness:
    """The plumbing of a benchmark run: producers, fills, workers, counters and result cells.

    Args:
        server: the Redis server (started).
        systems: the systems, in order.
        scenarios: the scenarios to run, in order.
        runs: runs per measurement.
        sizes: job counts.
        caps: time caps.
        namespace: the errands namespace and key prefix on a shared server ("" on a private one).
        log: where progress lines go.
    """

    def __init__(
        self,
        server: BenchServer,
        systems: list[System],
        scenarios: Sequence[str],
        runs: int,
        sizes: Sizes,
        caps: Caps,
        namespace: str,
        log: Callable[[str], None],
    ) -> None:
        self.server = server
        self.systems = systems
        self.scenarios = list(scenarios)
        self.runs = runs
        self.sizes = sizes
        self.caps = caps
        self.namespace = namespace
        self.prefix = f"{namespace}:" if namespace else ""
        self.counter = f"{self.prefix}bench:count"
        self.log = log
        self.run = Run()
        self.cpu_k: dict[str, int] = {}  # the CPU loop's iterations, calibrated per system
        self._worker_logs = WORK / "logs"

    # Plumbing -----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment of producers and workers."""
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env[ENV_URL] = self.server.url
        env[ENV_PREFIX] = self.prefix
        env["BENCH_NAMESPACE"] = self.namespace or "errands"
        # A caller's PYTHONPATH stays behind ROOT: pointing it at another checkout's src/
        # measures that version of errands (an A/B of two commits).
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _producer_argv(self, system: System, action: str, args: Sequence[str]) -> list[str]:
        return [system.python, "-m", "benchmarks.producer", system.name, action, *args]

    def producer(self, system: System, action: str, *args: str, cap_s: float = 0) -> Any:
        """Run one producer action in the system's environment; return its JSON result."""
        return self.producers(system, action, [list(args)], cap_s)[0]

    def producers(
        self, system: System, action: str, arg_lists: Sequence[Sequence[str]], cap_s: float = 0
    ) -> list[Any]:
        """Run producers side by side (one per argument list); return their JSON results."""
        extra = ["--cap-s", str(cap_s)] if cap_s else []
        timeout = cap_s * self.runs + self.caps.start + self.caps.producer_slack
        processes = [
            subprocess.Popen(
                self._producer_argv(system, action, [*args, *extra]),
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in arg_lists
        ]
        answers: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            for process in processes:
                try:
                    out, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    raise BenchError(
                        f"producer {action} did not finish within {timeout:g}s"
                    ) from None
                answers.append(_answer(action, process.returncode, out, err))
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        return answers

    def fill(self, system: System, task: str, n: int, *args: int, cap_s: float = 0) -> None:
        """Queue `n` jobs with the system's fastest path (untimed): two producers side by side."""
        extra = [x for a in args for x in ("--arg", str(a))]
        cap = cap_s or self.caps.fill
        parts = [n] if n < 5_000 else [n // 2, n - n // 2]
        answers = self.producers(
            system,
            "fill",
            [["--task", task, "--n", str(part), *extra] for part in parts],
            cap_s=cap,
        )
        done = sum(a["done"] for a in answers)
        if done < n:
            raise BenchError(f"queueing {n:,} jobs took over {cap:g}s ({done:,} queued by then)")
        elapsed = max(a["elapsed_s"] for a in answers)
        if elapsed > 0:
            system.fill_rate = done / elapsed

    def workers(self, system: System, kind: str, children: int, what: str) -> Workers:
        """Start the system's workers for `kind` with `children` children."""
        argvs = system.info["workers"].get(f"{kind}:{children}")
        if not argvs:
            raise BenchError(f"no worker command for {kind} with {children} children")
        path = self._worker_logs / f"{system.name}-{what}.log"
        return Workers(argvs, self.env(), ROOT, path)

    def drain(
        self, system: System, kind: str, children: int, target: int, cap_s: float, what: str
    ) -> tuple[Progress, int]:
        """Start workers on a queued backlog and wait for `target` jobs; return progress, total."""
        workers = self.workers(system, kind, children, what)
        try:
            progress = workers.wait(self.server, self.counter, target, self.caps.start, cap_s)
        finally:
            workers.stop()
        return progress, read_count(self.server, self.counter)

    def cell(self, scenario: str, system: System, metric: str) -> Cell:
        """The result cell of a metric."""
        return self.run.cell(scenario, system.name, metric)

    def mark(self, scenario: str, system: System, status: str, reason: str) -> None:
        """Mark every metric of a scenario n/a or failed for a system, with the reason."""
        spec = next(s for s in specs(self.meta()) if s.key == scenario)
        for metric in spec.metrics:
            cell = self.cell(scenario, system, metric.key)
            if cell.status == "ok" and not cell.values and not cell.text:
                cell.status, cell.note = status, reason

    def meta(self) -> dict[str, Any]:
        """The run's metadata so far."""
        sizes = self.sizes
        return {
            "sizes": {
                "n": sizes.n,
                "latency_n": sizes.latency_n,
                "cpu_n": sizes.cpu_n,
                "async_n": sizes.async_n,
                "memory_n": sizes.memory_n,
                "backlog": list(sizes.backlog),
                "backlog_k": sizes.backlog_k,
            },
            "runs": self.runs,
            "order": [s.name for s in self.systems],
        }

    def windows(
        self,
        system: System,
        children: int,
        window: int,
        cap_s: float,
        what: str,
        *,
        count: int | None = None,
        warm_up: int = 0,
    ) -> list[Progress]:
        """Start workers on a queued backlog; time `count` (default: runs) windows of `window`
        jobs, in turn.

        Each window runs from the end of the previous one (the first from the first job seen,
        or, with `warm_up`, from that many jobs after it) until `window` more jobs finished, or
        `cap_s`.
        """
        workers = self.workers(system, "default", children, what)
        steps: list[Progress] = []
        try:
            first = workers.wait(self.server, self.counter, 1, self.caps.start, 0)
            start_t, start_count = first.first_t, first.first_count
            if warm_up:
                warm = workers.wait(self.server, self.counter, start_count + warm_up, 1, cap_s)
                start_t, start_count = warm.last_t, warm.last_count
            for _ in range(self.runs if count is None else count):
                target = start_count + window
                step = workers.wait(self.server, self.counter, target, 1, cap_s)
                steps.append(
                    Progress(start_t, start_count, step.last_t, step.last_count, step.capped)
                )
                start_t, start_count = step.last_t, step.last_count
        finally:
            workers.stop()
        return steps


def _answer(action: str, code: int, out: str, err: str) -> Any:
    for line in reversed(out.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))
    tail = " / ".join((err.strip() or out.strip() or "no output").splitlines()[-3:])[-400:]
    raise BenchError(f"producer {action} failed (exit {code}): {tail}")


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two `command_stats` readings (only the ones that changed)."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
