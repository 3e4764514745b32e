"""The seven scenarios, as methods of `Bench` (a `Harness` that runs them for each system).

Each scenario method measures one system and fills its result cells; `Bench.execute` runs every
selected scenario for every system in turn and turns any failure into a "failed" cell with the
reason, so one broken system never stops the others.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks.adapters.base import SLEEP_S
from benchmarks.harness import (
    BENCH,
    ROOT,
    Harness,
    System,
    calibrate_cpu,
    command_delta,
    percentile,
)
from benchmarks.report import SCENARIOS, Run
from benchmarks.workers import BenchError

__all__ = ["SCENARIO_KEYS", "SCRIPT_COMMANDS", "Bench"]

SCENARIO_KEYS = tuple(s.key for s in SCENARIOS)
SCRIPT_COMMANDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")

_CPU_WARM_UP = 10  # jobs finished before a CPU window starts: the children are all running
_CPU_SPARE = 60  # queued beyond the window: prefetched jobs never leave it short


class Bench(Harness):
    """One benchmark run: the scenarios, on the harness's plumbing."""

    # Scenarios ----------------------------------------------------------------------------------

    def enqueue(self, system: System) -> None:
        """Scenario 1: N no-op jobs one by one and in bulk."""
        n, cap = self.sizes.n, self.caps.enqueue
        for mode in ("one", "bulk"):
            cell = self.cell("enqueue", system, f"{mode}_rate")
            if mode == "bulk" and not system.info["bulk_api"]:
                cell.status, cell.note = "n/a", system.info.get("no_bulk_reason") or "no bulk API"
                continue
            for _ in range(self.runs):
                self.server.reset()
                self.server.reset_stats()
                before = self.server.command_stats()
                answer = self.producer(
                    system, "enqueue", "--task", "noop", "--n", str(n), "--mode", mode, cap_s=cap
                )
                done, elapsed = answer["done"], answer["elapsed_s"]
                cell.values.append(done / elapsed)
                if done < n:
                    cell.note = f"stopped at the {cap:g} s cap: rate over the jobs sent by then"
                if mode == "one" and "commands" in self.scenarios:
                    delta = command_delta(before, self.server.command_stats())
                    commands = self.cell("commands", system, "enqueue_cmds")
                    commands.values.append(sum(delta.values()) / done)
        bulk = system.info["bulk_api"]
        self.cell("enqueue", system, "bulk_api").text = bulk or "none"

    def processing(self, system: System) -> None:
        """Scenario 2 (and the commands of scenario 4): N queued no-op jobs, 1 and 2 children.

        The first run queues N jobs; a later run tops the queue up with as many jobs as the
        previous one finished (a full flush and refill only when it finished them all), so a
        slow system does not spend the budget re-queueing jobs that it never reached.
        """
        n = self.sizes.n
        finished = n
        for children in (1, 2):
            rates = self.cell("processing", system, f"rate_{children}")
            for run in range(self.runs):
                if finished >= n * 0.8:
                    self.server.reset()
                    self.fill(system, "noop", n)
                else:
                    self.server.client.delete(self.counter)
                    self.server.counter.add("del")
                    self.fill(system, "noop", finished)
                self.server.reset_stats()
                before = self.server.command_stats()
                progress, finished = self.drain(
                    system, "default", children, n, self.caps.processing, f"processing-{children}"
                )
                rates.values.append(progress.rate)
                if progress.capped:
                    rates.note = (
                        f"stopped at the {self.caps.processing:g} s cap: rate over the jobs done "
                        "by then"
                    )
                if children == 1:
                    self.cell("processing", system, "time_1").values.append(n / progress.rate)
                    if "commands" in self.scenarios:
                        calls = command_delta(before, self.server.command_stats())
                        self._commands(system, calls, finished)
                self.log(
                    f"  {system.name} processing, {children} child(ren), run {run + 1}: "
                    f"{progress.rate:,.0f} jobs/s"
                )
        one = self.cell("processing", system, "rate_1").values
        two = self.cell("processing", system, "rate_2").values
        scaling = self.cell("processing", system, "scaling")
        scaling.values = [b / a for a, b in zip(one, two, strict=False)]

    def _commands(self, system: System, delta: dict[str, int], jobs: int) -> None:
        if jobs <= 0:
            return
        delta["incr"] = delta.get("incr", 0) - jobs  # the task's own INCR
        total = sum(v for v in delta.values() if v > 0)
        self.cell("commands", system, "process_cmds").values.append(total / jobs)
        scripts = sum(delta.get(c, 0) for c in SCRIPT_COMMANDS)
        self.cell("commands", system, "process_scripts").values.append(scripts / jobs)
        top = sorted(((v, k) for k, v in delta.items() if v > 0), reverse=True)[:4]
        self.cell("commands", system, "top").text = ", ".join(
            f"{k.upper()} {v / jobs:.2f}" for v, k in top
        )

    def latency(self, system: System) -> None:
        """Scenario 3: enqueue-to-start and enqueue-to-result on an idle worker."""
        names = ("start_p50", "start_p99", "result_p50", "result_p99", "samples")
        cells = {name: self.cell("latency", system, name) for name in names}
        self.server.reset()
        workers = self.workers(system, "default", 1, "latency")
        try:
            answer = self.producer(
                system,
                "latency",
                "--n", str(self.sizes.latency_n),
                "--windows", str(self.runs),
                "--timeout-s", str(self.caps.start),
                cap_s=self.caps.latency,
            )  # fmt: skip
            workers.check()
        finally:
            workers.stop()
        for samples in answer["windows"]:
            if not samples:
                raise BenchError("no latency sample within the cap")
            starts = [s[0] * 1000 for s in samples]
            results = [s[1] * 1000 for s in samples]
            cells["start_p50"].values.append(percentile(starts, 0.5))
            cells["start_p99"].values.append(percentile(starts, 0.99))
            cells["result_p50"].values.append(percentile(results, 0.5))
            cells["result_p99"].values.append(percentile(results, 0.99))
            cells["samples"].values.append(len(samples))
            if len(samples) < self.sizes.latency_n:
                cells["samples"].note = (
                    f"stopped at the {self.caps.latency:g} s cap: percentiles over the samples "
                    "taken by then"
                )

    def backlog(self, system: System) -> None:
        """Scenario 5 (and the memory of scenario 4): queue backlogs, measure dequeue rates.

        Sizes go up; a size whose filling would take longer than the budget (estimated from
        the system's fill rate so far) is n/a, and so are the larger ones.
        """
        sizes = sorted(
            set(self.sizes.backlog if "backlog" in self.scenarios else ())
            | ({self.sizes.memory_n} if "commands" in self.scenarios else set())
        )
        skip = ""
        for size in sizes:
            memory = size == self.sizes.memory_n and "commands" in self.scenarios
            budget = self.caps.memory_fill if memory else self.caps.fill
            estimate = size / system.fill_rate if system.fill_rate else 0.0
            if not skip and estimate > budget:
                skip = (
                    f"queueing {size:,} jobs would take about {math.ceil(estimate):,} s at the "
                    f"{system.fill_rate:,.0f} jobs/s of its fastest enqueue path, over the "
                    f"{budget:g} s budget"
                )
            if skip:
                self._unmeasured(system, size, "n/a", skip)
                continue
            try:
                self._backlog_size(system, size, budget)
            except BenchError as error:
                self._unmeasured(system, size, "failed", str(error))
                skip = f"not tried after the {size:,} backlog failed"
        if "backlog" in self.scenarios:
            self._fetch_backlog(system)

    def _unmeasured(self, system: System, size: int, status: str, reason: str) -> None:
        cells = []
        if size in self.sizes.backlog and "backlog" in self.scenarios:
            cells.append(self.cell("backlog", system, f"rate_{size}"))
        if size == self.sizes.memory_n and "commands" in self.scenarios:
            cells.append(self.cell("commands", system, "memory"))
        for cell in cells:
            cell.status, cell.note = status, reason

    def _backlog_size(self, system: System, size: int, budget_s: float) -> None:
        self.server.reset()
        before = self.server.used_memory()
        self.fill(system, "noop", size, cap_s=budget_s)
        after = self.server.used_memory()
        self.log(f"  {system.name}: {size:,} queued, {(after - before) / size:,.0f} bytes/job")
        if size == self.sizes.memory_n and "commands" in self.scenarios:
            self.cell("commands", system, "memory").values.append((after - before) / size)
        if size not in self.sizes.backlog or "backlog" not in self.scenarios:
            return
        window = min(self.sizes.backlog_k, max(1, size // (self.runs + 1)))
        cell = self.cell("backlog", system, f"rate_{size}")
        for step in self.windows(system, 1, window, self.caps.backlog, f"backlog-{size}"):
            cell.values.append(step.rate)
            if step.capped:
                cell.note = f"stopped at the {self.caps.backlog:g} s cap per window"

    def _fetch_backlog(self, system: System) -> None:
        """errands only: run ``benchmarks/fetch_backlog.py`` (its own figures) when it exists."""
        if system.name != "errands":
            return
        script = BENCH / "fetch_backlog.py"
        if not self.server.private:
            self.run.meta["fetch_backlog"] = "not run on a shared server."
            return
        if not script.exists():
            self.run.meta["fetch_backlog"] = "benchmarks/fetch_backlog.py is not in this tree."
            return
        argv = [sys.executable, "-m", "benchmarks.fetch_backlog"]
        usage = subprocess.run(
            [*argv, "--help"],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
        for flag in ("--redis-url", "--url", "--broker-url"):
            if flag in usage:
                argv += [flag, self.server.url]
                break
        if "--sizes" in usage:
            argv += ["--sizes", ",".join(str(size) for size in self.sizes.backlog)]
        self.server.reset()
        try:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=self.caps.fetch_backlog,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.run.meta["fetch_backlog"] = (
                f"{' '.join(argv[1:])} did not finish within {self.caps.fetch_backlog:g} s."
            )
            return
        output = done.stdout.strip() or done.stderr.strip()
        shown = " ".join(["python", *argv[1:]]).replace(self.server.url, "<private server>")
        self.run.meta["fetch_backlog"] = f"$ {shown}  (exit {done.returncode})\n" + output[-3000:]

    def cpu(self, system: System) -> None:
        """Scenario 6: CPU-bound jobs with 1 and 2 children.

        The loop is calibrated to ~5 ms just before the system's turn: this VM's speed drifts
        by a third within the hour, and shorter jobs make every fixed cost weigh more. Runs
        alternate 1 and 2 children, each pair a few seconds apart, and the speed-up is taken
        per pair: a drift between a system's 1-child and 2-child runs would otherwise read as
        scaling. Each run is a fresh worker on a fresh queue, timed over N jobs after a few
        warm-up jobs (the children's start-up stays out of the window).
        """
        n = self.sizes.cpu_n
        k = self.cpu_k[system.name] = calibrate_cpu()
        times = {c: self.cell("cpu", system, f"time_{c}") for c in (1, 2)}
        for run in range(self.runs):
            for children in (1, 2):
                self.server.reset()
                self.fill(system, "cpu", n + _CPU_WARM_UP + _CPU_SPARE, k)
                (step,) = self.windows(
                    system,
                    children,
                    n,
                    self.caps.cpu,
                    f"cpu-{children}-{run + 1}",
                    count=1,
                    warm_up=_CPU_WARM_UP,
                )
                cell = times[children]
                cell.values.append(n / step.rate)
                if step.capped:
                    cell.note = f"stopped at the {self.caps.cpu:g} s cap: scaled from the jobs done"
        one, two = times[1].values, times[2].values
        self.cell("cpu", system, "speedup").values = [a / b for a, b in zip(one, two, strict=False)]

    def async_io(self, system: System) -> None:
        """Scenario 7: async sleeps at concurrency 200 on one child."""
        reason = system.info["no_async_reason"]
        if reason:
            self.mark("async", system, "n/a", reason)
            return
        n = self.sizes.async_n
        time_cell = self.cell("async", system, "time")
        for _ in range(self.runs):
            self.server.reset()
            self.fill(system, "sleep", n)
            progress, _ = self.drain(system, "async", 1, n, self.caps.async_, "async")
            # The counter moves when a job ends, so the first reading is one sleep after the
            # first job started: the clock starts there. This also measures a run of fewer
            # jobs than the concurrency, where every job ends in the same instant.
            elapsed = progress.last_t - progress.first_t + SLEEP_S
            rate = progress.last_count / elapsed
            time_cell.values.append(n / rate)
            self.cell("async", system, "rate").values.append(rate)
            if progress.capped:
                time_cell.note = f"stopped at the {self.caps.async_:g} s cap: scaled from the jobs"

    # The run ------------------------------------------------------------------------------------

    def describe(self) -> None:
        """Ask every system's producer what it is (a failure marks the system failed)."""
        for system in self.systems:
            if system.error:
                continue
            try:
                system.info = self.producer(system, "describe")
            except BenchError as error:
                system.error = str(error)
            if not system.error and not self.server.private and not system.info["namespaced"]:
                system.error = "its keys are not namespaced: it runs on a private server only"
            self.run.systems[system.name] = {
                **system.info,
                "label": system.info.get("label", system.name),
                "error": system.error,
            }

    def execute(self) -> Run:
        """Run every scenario for every system."""
        self.describe()
        steps: dict[str, Callable[[System], None]] = {
            "enqueue": self.enqueue,
            "processing": self.processing,
            "latency": self.latency,
            "backlog": self.backlog,
            "cpu": self.cpu,
            "async": self.async_io,
        }
        for scenario in SCENARIO_KEYS:
            if scenario not in self.scenarios:
                continue
            step = "backlog" if scenario == "commands" else scenario
            if scenario == "backlog" and "commands" in self.scenarios:
                continue  # done with the memory of scenario 4
            for system in self.systems:
                started = time.monotonic()
                self._step(scenario, step, steps[step], system)
                self.log(f"{scenario} {system.name}: {time.monotonic() - started:.0f} s")
        self.run.meta.update(self.meta())
        return self.run

    def _step(
        self, scenario: str, step: str, measure: Callable[[System], None], system: System
    ) -> None:
        """Measure one scenario of one system; turn any failure into failed cells."""
        reason = system.error
        if not reason:
            try:
                measure(system)
            except Exception as error:  # a broken adapter must not stop the others
                reason = str(error) if isinstance(error, BenchError) else repr(error)
                self.log(f"{scenario} {system.name} failed: {reason}")
                system.failures += 1
                if system.failures >= 2:  # a hung system would spend the budget: stop it
                    system.error = f"not run after two failed scenarios (last: {reason})"
        if not reason:
            return
        self.mark(scenario, system, "failed", reason)
        if step == "backlog" and "backlog" in self.scenarios:
            self.mark("backlog", system, "failed", reason)
        if step == "processing" and "commands" in self.scenarios:
            for metric in ("process_cmds", "process_scripts", "top"):
                cell = self.cell("commands", system, metric)
                if not cell.values and not cell.text:
                    cell.status, cell.note = "failed", f"processing: {reason}"
