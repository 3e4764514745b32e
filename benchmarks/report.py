"""The results of a benchmark run: their model, RESULTS.md and results.png.

``python -m benchmarks.report results.json RESULTS.md [--chart results.png]`` rewrites the
report from a saved run; the driver calls `write_markdown` and `write_chart` itself. The chart
needs matplotlib, which lives in the peers' environment: when this interpreter lacks it the
driver runs ``write_chart`` there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SCENARIOS",
    "Cell",
    "Metric",
    "Run",
    "ScenarioSpec",
    "load_run",
    "main",
    "write_chart",
    "write_markdown",
]


@dataclass
class Cell:
    """One measurement of one system in one scenario: a value per run, or why there is none.

    Attributes:
        values: one value per run (median, min and max are reported).
        status: "ok", "n/a" (does not apply, with the reason) or "failed" (with the reason).
        note: the reason, or a remark on the values (a time cap that was reached).
        text: a text value instead of numbers (e.g. the commands a job costs).
    """

    values: list[float] = field(default_factory=list)
    status: str = "ok"
    note: str = ""
    text: str = ""


@dataclass(frozen=True)
class Metric:
    """A column of a scenario's table."""

    key: str
    header: str
    digits: int = 0
    chart: bool = False
    log: bool = False
    lower_better: bool = False


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario: its title, what it measures, and its columns."""

    key: str
    title: str
    description: str
    metrics: tuple[Metric, ...]


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        "enqueue",
        "1. Enqueue",
        "{n:,} no-op jobs from one producer, one call per job, and with the system's bulk API "
        "(timed from the first enqueue to the last; jobs per second, higher is better).",
        (
            Metric("one_rate", "one by one, jobs/s", chart=True, log=True),
            Metric("bulk_rate", "bulk, jobs/s", chart=True, log=True),
            Metric("bulk_api", "bulk API"),
        ),
    ),
    ScenarioSpec(
        "processing",
        "2. Processing",
        "{n:,} queued no-op jobs (each one Redis INCR), worker started after the jobs were "
        "queued; timed from the first job's INCR to the last one's (jobs per second, higher is "
        "better).",
        (
            Metric("rate_1", "1 child, jobs/s", chart=True, log=True),
            Metric("rate_2", "2 children, jobs/s", chart=True, log=True),
            Metric("scaling", "2 vs 1 child", digits=2),
            Metric("time_1", "1 child, s for N at that rate", digits=2),
        ),
    ),
    ScenarioSpec(
        "latency",
        "3. Latency on an idle worker",
        "{latency_n} jobs sent one at a time to an idle worker (one child); enqueue-to-start from "
        "the time the job recorded when it started, enqueue-to-result when the system's result "
        "API returned (milliseconds, lower is better).",
        (
            Metric(
                "start_p50", "to start p50, ms", digits=2, chart=True, log=True, lower_better=True
            ),
            Metric("start_p99", "to start p99, ms", digits=2),
            Metric(
                "result_p50", "to result p50, ms", digits=2, chart=True, log=True, lower_better=True
            ),
            Metric("result_p99", "to result p99, ms", digits=2),
            Metric("samples", "samples"),
        ),
    ),
    ScenarioSpec(
        "commands",
        "4. Redis commands and memory per job",
        "Commands per job from INFO commandstats (reset before each run; the driver's own "
        "commands and the task's INCR taken out; calls made inside Lua scripts and functions "
        "are counted too, as Redis counts them); memory per queued job from INFO memory "
        "used_memory before and after queueing {memory_n:,} jobs.",
        (
            Metric("process_cmds", "processing, cmds/job", digits=2, chart=True, lower_better=True),
            Metric("process_scripts", "of which script calls/job", digits=2),
            Metric("enqueue_cmds", "enqueue one by one, cmds/job", digits=2),
            Metric("memory", "memory, bytes/queued job", chart=True, lower_better=True),
            Metric("top", "top commands per processed job"),
        ),
    ),
    ScenarioSpec(
        "backlog",
        "5. Backlog",
        "Dequeue throughput of one worker child with a backlog already queued: jobs per second "
        "over {backlog_k:,} jobs taken from a queue holding the backlog (higher is better).",
        (),  # one column per backlog size, added by `backlog_metrics`
    ),
    ScenarioSpec(
        "cpu",
        "6. CPU-bound",
        "{cpu_n} jobs of ~5 ms pure-Python work each (the same loop everywhere, calibrated "
        "just before each system's turn), 1 and 2 worker children in alternating runs; seconds "
        "for the {cpu_n} jobs after 10 warm-up jobs (lower is better); the speed-up is the "
        "median of the per-pair ratios.",
        (
            Metric("time_1", "1 child, s", digits=2, chart=True, lower_better=True),
            Metric("time_2", "2 children, s", digits=2, chart=True, lower_better=True),
            Metric("speedup", "speed-up", digits=2),
        ),
    ),
    ScenarioSpec(
        "async",
        "7. Async I/O",
        "{async_n:,} `async def` jobs that each await a 50 ms sleep, one child at concurrency "
        "200 (ideal: {async_ideal:.1f} s; lower is better). The clock starts 50 ms before the "
        "first job ends, when it started.",
        (
            Metric("time", "s for all", digits=2, chart=True, lower_better=True),
            Metric("rate", "jobs/s"),
        ),
    ),
)


def backlog_metrics(sizes: Sequence[int]) -> tuple[Metric, ...]:
    """The columns of the backlog table: jobs/s at each backlog size."""
    return tuple(Metric(f"rate_{s}", f"{s:,} queued, jobs/s", chart=True, log=True) for s in sizes)


@dataclass
class Run:
    """A whole benchmark run: what was measured, on what, with which settings."""

    meta: dict[str, Any] = field(default_factory=dict)
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, dict[str, Cell]]] = field(default_factory=dict)

    def cell(self, scenario: str, system: str, metric: str) -> Cell:
        """The cell of `metric`, created empty when missing."""
        row = self.results.setdefault(scenario, {}).setdefault(system, {})
        return row.setdefault(metric, Cell())

    def to_json(self) -> str:
        """The run as JSON."""
        return json.dumps(
            {"meta": self.meta, "systems": self.systems, "results": self._plain()}, indent=1
        )

    def _plain(self) -> dict[str, Any]:
        return {
            scenario: {
                system: {metric: asdict(cell) for metric, cell in row.items()}
                for system, row in rows.items()
            }
            for scenario, rows in self.results.items()
        }


def load_run(path: Path) -> Run:
    """A run saved by `Run.to_json`."""
    data = json.loads(path.read_text())
    results = {
        scenario: {
            system: {metric: Cell(**cell) for metric, cell in row.items()}
            for system, row in rows.items()
        }
        for scenario, rows in data["results"].items()
    }
    return Run(meta=data["meta"], systems=data["systems"], results=results)


def _number(value: float, digits: int) -> str:
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def format_cell(cell: Cell, digits: int) -> str:
    """``median (min-max)`` of the runs, one value alone, a text, or the status."""
    if cell.status != "ok":
        return cell.status
    if cell.text:
        return cell.text
    if not cell.values:
        return ""
    median = statistics.median(cell.values)
    shown = _number(median, digits)
    if len(cell.values) > 1:
        low, high = min(cell.values), max(cell.values)
        shown += f" ({_number(low, digits)}\u2013{_number(high, digits)})"
    return shown


def median_or_none(cell: Cell | None) -> float | None:
    """The median of a cell's values, or None when it has none."""
    if cell is None or cell.status != "ok" or not cell.values:
        return None
    return float(statistics.median(cell.values))


def specs(meta: dict[str, Any]) -> tuple[ScenarioSpec, ...]:
    """The scenario specs of a run (the backlog columns depend on its sizes)."""
    sizes = meta.get("sizes", {}).get("backlog", [])
    return tuple(
        ScenarioSpec(s.key, s.title, s.description, backlog_metrics(sizes))
        if s.key == "backlog"
        else s
        for s in SCENARIOS
    )


def _table(run: Run, spec: ScenarioSpec) -> list[str]:
    rows = run.results.get(spec.key, {})
    lines = [
        "| system | " + " | ".join(m.header for m in spec.metrics) + " |",
        "|---|" + "---|" * len(spec.metrics),
    ]
    notes: list[str] = []
    for system in run.meta.get("order", list(rows)):
        if system not in rows:
            continue
        cells = []
        for metric in spec.metrics:
            cell = rows[system].get(metric.key)
            if cell is None:
                cells.append("")
                continue
            shown = format_cell(cell, metric.digits)
            if cell.note:
                if cell.note not in notes:
                    notes.append(cell.note)
                shown += f" [{notes.index(cell.note) + 1}]"
            cells.append(shown)
        label = run.systems.get(system, {}).get("label", system)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {note}  " for i, note in enumerate(notes, 1))
    return lines


def _seam_cost(run: Run) -> list[str]:
    """errands with three no-op middlewares against errands alone, processing, same run."""
    rows = run.results.get("processing", {})
    if "errands" not in rows or "errands-mw" not in rows:
        return []
    parts = []
    for children in (1, 2):
        plain = median_or_none(rows["errands"].get(f"rate_{children}"))
        seam = median_or_none(rows["errands-mw"].get(f"rate_{children}"))
        if plain and seam:
            parts.append(f"{seam / plain:.1%} with {children} child{'ren' if children > 1 else ''}")
    if not parts:
        return []
    return [
        "errands with three no-op middlewares processes at "
        + " and ".join(parts)
        + " of errands' rate without them (medians of this run).",
        "",
    ]


def write_markdown(run: Run, path: Path) -> None:
    """Write RESULTS.md: a table per scenario, then versions, machine and settings."""
    meta = run.meta
    sizes = meta.get("sizes", {})
    fill = dict(sizes)
    fill["backlog_k"] = sizes.get("backlog_k", 0)
    fill["async_ideal"] = sizes.get("async_n", 0) * 0.05 / 200
    lines = [
        "# Benchmarks: errands and its peers",
        "",
        f"Run on {meta.get('date', '?')} by `{meta.get('command', 'python -m benchmarks.run')}` "
        f"in {meta.get('wall_s', 0) / 60:.1f} minutes. Each number is the median of "
        f"{meta.get('runs', 3)} runs with the min\u2013max in brackets; `n/a` and `failed` carry "
        "their reason in a numbered note under the table.",
        "",
        f"Machine: {meta.get('machine', '?')}; load average (1 min) "
        f"{meta.get('load', '?')}. Server: {meta.get('server', '?')}, private, on loopback, "
        "no persistence, flushed between runs.",
        "",
        "Every system runs the same task bodies (benchmarks/adapters/base.py); workers are "
        "separate processes started after the jobs are queued, and the clock starts at the "
        "first job's INCR, so interpreter start-up never counts. Every worker logs at WARNING "
        "(a per-job log line is a deployment choice, not a cost of the queue).",
        "",
        "The measurements behind errands' own constants and design choices are in "
        "[docs/performance.md](../docs/performance.md).",
        "",
    ]
    if "floor" in meta.get("order", run.systems):
        lines += [
            "The row *floor: bare redis-py* is not a task queue: a redis-py LPUSH/BRPOP loop "
            "with no acks, leases, retries, time limits or result store "
            "(benchmarks/adapters/floor_adapter.py). It shows what this machine and this Redis "
            "allow a Python process at all: every other row reads against it.",
            "",
        ]
    for spec in specs(meta):
        if spec.key not in run.results:
            continue
        lines += [f"## {spec.title}", "", spec.description.format(**fill), ""]
        lines += _table(run, spec)
        lines.append("")
        if spec.key == "processing":
            lines += _seam_cost(run)
        if spec.key == "backlog" and meta.get("fetch_backlog"):
            lines += [
                "errands' fetch cost with a backlog, from `benchmarks/fetch_backlog.py`:",
                "",
                "```text",
                meta["fetch_backlog"],
                "```",
                "",
            ]
    lines += ["## Versions", "", "| system | packages | python |", "|---|---|---|"]
    for system in meta.get("order", list(run.systems)):
        info = run.systems.get(system, {})
        packages = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
        lines.append(f"| {info.get('label', system)} | {packages} | {info.get('python', '')} |")
    lines += ["", "## Settings", ""]
    for system in meta.get("order", list(run.systems)):
        info = run.systems.get(system, {})
        lines.append(f"**{info.get('label', system)}**")
        lines.append("")
        lines.extend(f"- {line}" for line in info.get("settings", []))
        if info.get("error"):
            lines.append(f"- failed to start: {info['error']}")
        lines.append("")
    lines += ["## Method", ""]
    lines.extend(f"- {line}" for line in meta.get("method", []))
    lines.append("")
    path.write_text("\n".join(lines))


#: errands stands out; the floor (not a task queue) is grey; the peers share one colour
_COLOURS = {"errands": "#d62728", "errands-mw": "#ff9896", "floor": "#999999"}


def write_chart(run: Run, path: Path) -> None:
    """Write results.png: one bar chart per charted column, min-max as error bars."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    pyplot: Any = importlib.import_module("matplotlib.pyplot")
    panels = [
        (spec, metric)
        for spec in specs(run.meta)
        if spec.key in run.results
        for metric in spec.metrics
        if metric.chart
    ]
    if not panels:
        return
    columns = 3
    rows = (len(panels) + columns - 1) // columns
    figure, axes = pyplot.subplots(rows, columns, figsize=(6.5 * columns, 4 * rows), squeeze=False)
    order = run.meta.get("order", [])
    for index, (spec, metric) in enumerate(panels):
        axis = axes[index // columns][index % columns]
        names, medians, lows, highs, missing = [], [], [], [], []
        colours = []
        for system in order:
            cell = run.results[spec.key].get(system, {}).get(metric.key)
            if cell is None:
                continue
            names.append(run.systems.get(system, {}).get("label", system))
            colours.append(_COLOURS.get(system, "#1f77b4"))
            value = median_or_none(cell)
            if value is None:
                missing.append((len(names) - 1, cell.status if cell.status != "ok" else "n/a"))
                value = float("nan")
            medians.append(value)
            lows.append(value - min(cell.values) if cell.values else 0.0)
            highs.append(max(cell.values) - value if cell.values else 0.0)
        rows_at = list(range(len(names)))
        axis.barh(rows_at, medians, xerr=[lows, highs], color=colours, capsize=2)
        axis.set_yticks(rows_at, names)
        axis.set_ylim(len(names) - 0.5, -0.5)  # the first system on top
        for row, status in missing:
            axis.text(0.01, row, status, transform=axis.get_yaxis_transform(), va="center",
                      fontsize=7, color="#777777")  # fmt: skip
        better = "lower is better" if metric.lower_better else "higher is better"
        axis.set_title(f"{spec.title}\n{metric.header} ({better})", fontsize=9)
        axis.tick_params(labelsize=8)
        shown = [v for v in medians if not math.isnan(v) and v > 0]
        if metric.log and shown and max(shown) / min(shown) > 30:
            axis.set_xscale("log")
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Rewrite RESULTS.md (and the chart) from a saved results.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report")
    parser.add_argument("results", type=Path)
    parser.add_argument("markdown", type=Path, nargs="?")
    parser.add_argument("--chart", type=Path)
    options = parser.parse_args(argv)
    run = load_run(options.results)
    if options.markdown:
        write_markdown(run, options.markdown)
    if options.chart:
        write_chart(run, options.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
