"""The verdict and the report of `benchmarks.expiry`: pure functions of the samples.

A run records `Sample` readings; `judge` says what those after the warm-up show (the
sustained rate, the results held, the memory slope, flat or not) and `render` writes the
Markdown report.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BATCH",
    "FLAT_TOLERANCE",
    "HELD_LIMIT",
    "HIGH_MARK",
    "LOW_MARK",
    "WARM_UP_S",
    "Context",
    "Measured",
    "Sample",
    "Settings",
    "Verdict",
    "judge",
    "judged_samples",
    "render",
    "summary",
]

WARM_UP_S = 30.0  # the first samples: the worker's prefetch and Redis's allocator settle
BATCH = 1_000  # jobs per enqueue_many call, as the other benchmarks send them
LOW_MARK = 2_000  # refill below this many ready jobs...
HIGH_MARK = 10_000  # ...up to about this many: the worker never waits for work
FLAT_TOLERANCE = 0.10  # last third's max used_memory within 10 % of the middle third's
HELD_LIMIT = 2.0  # results held never above this many times rate x ttl


@dataclass(frozen=True)
class Settings:
    """What one run does.

    Attributes:
        seconds: how long it samples, from the moment the worker serves.
        ttl_s: seconds each result is kept.
        sample_s: seconds between two samples.
        warm_up_s: the first seconds, recorded but not judged.
    """

    seconds: float = 300.0
    ttl_s: float = 10.0
    sample_s: float = 5.0
    warm_up_s: float = WARM_UP_S


@dataclass(frozen=True)
class Sample:
    """One reading.

    Attributes:
        elapsed_s: seconds since the worker started serving.
        used_memory: ``INFO memory`` used_memory, in bytes.
        results: results held (``HLEN`` of the results hash).
        expiries: entries of the expiry index (``ZCARD`` of results_x).
        succeeded: jobs succeeded so far (the queue's counter).
        ready: jobs ready (the backlog the producer keeps fed).
        rate: jobs per second since the previous sample (None for the first).
    """

    elapsed_s: float
    used_memory: int
    results: int
    expiries: int
    succeeded: int
    ready: int
    rate: float | None


@dataclass(frozen=True)
class Measured:
    """What one run recorded.

    Attributes:
        samples: the samples, in order.
        worker: the worker's command line.
        sent: jobs sent.
        polls: backlog readings of the producer.
        dry: readings that found no job ready.
        min_ready: the smallest backlog read.
    """

    samples: list[Sample]
    worker: str
    sent: int
    polls: int
    dry: int
    min_ready: int


# Verdict --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the samples after the warm-up say.

    Attributes:
        judged: the samples judged (those whose interval starts after the warm-up).
        rate: the sustained rate, jobs/s: the median of their intervals.
        rate_min: the slowest interval, jobs/s.
        rate_max: the fastest interval, jobs/s.
        held_median: results held, median.
        held_max: results held, max.
        expected_held: rate x ttl, the results a steady run holds.
        memory_min: used_memory, smallest, bytes.
        memory_median: used_memory, median, bytes.
        memory_max: used_memory, largest, bytes.
        slope_per_min: used_memory's least-squares slope, bytes per minute.
        middle_max: the largest used_memory of the middle third, bytes.
        last_max: the largest used_memory of the last third, bytes.
        flat: both conditions hold.
        reasons: why it is not flat (empty when flat).
    """

    judged: int
    rate: float
    rate_min: float
    rate_max: float
    held_median: float
    held_max: int
    expected_held: float
    memory_min: int
    memory_median: float
    memory_max: int
    slope_per_min: float
    middle_max: int
    last_max: int
    flat: bool
    reasons: tuple[str, ...]

    @property
    def last_vs_middle(self) -> float:
        """The last third's max against the middle third's: 0.03 is 3 % higher."""
        return self.last_max / self.middle_max - 1


def judged_samples(samples: Sequence[Sample], settings: Settings) -> list[Sample]:
    """The samples whose interval starts at or after the warm-up (their rate is all steady)."""
    return [
        s
        for previous, s in itertools.pairwise(samples)
        if previous.elapsed_s >= settings.warm_up_s and s.rate is not None
    ]


def judge(samples: Sequence[Sample], settings: Settings) -> Verdict:
    """Judge the samples after the warm-up (a pure function of the samples).

    Raises:
        ValueError: fewer than 3 samples after the warm-up.
    """
    judged = judged_samples(samples, settings)
    if len(judged) < 3:
        raise ValueError(f"{len(judged)} samples after the warm-up: at least 3 are needed")
    rates = [s.rate for s in judged if s.rate is not None]
    rate = statistics.median(rates)
    held = [s.results for s in judged]
    memory = [s.used_memory for s in judged]
    slope, _ = statistics.linear_regression([s.elapsed_s for s in judged], memory)
    third = len(judged) // 3
    middle_max = max(memory[third : len(judged) - third])
    last_max = max(memory[len(judged) - third :])
    expected = rate * settings.ttl_s
    reasons: list[str] = []
    change = last_max / middle_max - 1
    if abs(change) > FLAT_TOLERANCE:
        reasons.append(
            f"the last third's max used_memory is {change:+.1%} from the middle third's "
            f"({last_max:,} against {middle_max:,} bytes; {FLAT_TOLERANCE:.0%} allowed)"
        )
    if max(held) > HELD_LIMIT * expected:
        reasons.append(
            f"results held reached {max(held):,}, over {HELD_LIMIT:g} x rate x ttl "
            f"({HELD_LIMIT * expected:,.0f})"
        )
    return Verdict(
        judged=len(judged),
        rate=rate,
        rate_min=min(rates),
        rate_max=max(rates),
        held_median=statistics.median(held),
        held_max=max(held),
        expected_held=expected,
        memory_min=min(memory),
        memory_median=statistics.median(memory),
        memory_max=max(memory),
        slope_per_min=slope * 60,
        middle_max=middle_max,
        last_max=last_max,
        flat=not reasons,
        reasons=tuple(reasons),
    )


def summary(verdict: Verdict, settings: Settings) -> list[str]:
    """The verdict in a few lines (printed, and the report's last section)."""
    v = verdict
    lines = [
        f"Sustained rate: {v.rate:,.0f} jobs/s (median of {v.judged} intervals of "
        f"{settings.sample_s:g} s after the {settings.warm_up_s:g} s warm-up; slowest "
        f"{v.rate_min:,.0f}, fastest {v.rate_max:,.0f}).",
        f"Results held: median {v.held_median:,.0f}, max {v.held_max:,} "
        f"(rate x ttl = {v.expected_held:,.0f}; median / (rate x ttl) = "
        f"{v.held_median / v.expected_held:.2f}).",
        f"used_memory after warm-up: min {v.memory_min / 2**20:.2f} MiB, median "
        f"{v.memory_median / 2**20:.2f} MiB, max {v.memory_max / 2**20:.2f} MiB; "
        f"least-squares slope {v.slope_per_min:+,.0f} bytes/min.",
        f"Max used_memory, middle third {v.middle_max:,} bytes, last third {v.last_max:,} "
        f"bytes ({v.last_vs_middle:+.1%}).",
    ]
    if v.flat:
        lines.append(
            f"Verdict: FLAT (last third within {FLAT_TOLERANCE:.0%} of the middle third; results "
            f"held never above {HELD_LIMIT:g} x rate x ttl)."
        )
    else:
        lines.append("Verdict: NOT FLAT: " + "; ".join(v.reasons) + ".")
    return lines


# Report ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Where and how the run was made, for the report."""

    command: str
    machine: str
    load: str
    server: str
    errands: str
    started_utc: str
    baseline_memory: int


def render(run: Measured, settings: Settings, verdict: Verdict, ctx: Context) -> str:
    """The Markdown report: machine, command, settings, samples, verdict."""
    samples = run.samples
    lines = [
        "# Result expiry under load",
        "",
        "Generated by `benchmarks/expiry.py`: errands processing a no-op task as fast as this "
        f"machine allows, every result kept {settings.ttl_s:g} s (`result_ttl`). Memory should "
        "stay flat: results expire as fast as they are written.",
        "",
        f"- Command: `{ctx.command}`",
        f"- Started: {ctx.started_utc}",
        f"- Machine: {ctx.machine}; load average (1 min) {ctx.load}",
        f"- Server: {ctx.server}, private, no persistence; used_memory empty: "
        f"{ctx.baseline_memory:,} bytes",
        f"- errands: {ctx.errands}",
        f"- Worker: `{run.worker}` (maintenance every 5 s, the default)",
        f"- Producer: this process, `App.enqueue_many` batches of {BATCH:,} whenever fewer than "
        f"{LOW_MARK:,} jobs are ready, up to {HIGH_MARK:,}; it shares the machine's cores with "
        f"the worker and Redis. {run.sent:,} jobs sent; {run.polls:,} backlog readings, "
        f"{run.dry:,} of them empty, the smallest {run.min_ready:,} ready",
        f"- Settings: {settings.seconds:g} s, result_ttl {settings.ttl_s:g} s, a sample every "
        f"{settings.sample_s:g} s, the first {settings.warm_up_s:g} s a warm-up (recorded, not "
        "judged)",
        f"- Flat: the largest used_memory of the last third of the judged samples within "
        f"{FLAT_TOLERANCE:.0%} of the largest of the middle third, and results held never above "
        f"{HELD_LIMIT:g} x rate x ttl",
        "",
        "## Samples",
        "",
        "| elapsed s | used_memory, bytes | MiB | results (HLEN) | results_x (ZCARD) "
        "| succeeded | ready | rate, jobs/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    judged = {id(s) for s in judged_samples(samples, settings)}
    for s in samples:
        rate = f"{s.rate:,.0f}" if s.rate is not None else "-"
        mark = "" if id(s) in judged else " (warm-up)"
        lines.append(
            f"| {s.elapsed_s:.1f}{mark} | {s.used_memory:,} | {s.used_memory / 2**20:.2f} "
            f"| {s.results:,} | {s.expiries:,} | {s.succeeded:,} | {s.ready:,} | {rate} |"
        )
    lines += ["", "## Verdict", "", *(f"- {line}" for line in summary(verdict, settings)), ""]
    return "\n".join(lines)
