"""The benchmark driver: every scenario for every system, then RESULTS.md and results.png.

``python -m benchmarks.run [--systems errands,celery,...] [--scenarios enqueue,...] [--runs 3]
[--n 20000] [--out benchmarks/RESULTS.md]`` (``make bench``):

1. creates the peers' virtual environments from ``peers.txt``, ``peers-arq.txt`` and
   ``peers-saq.txt`` when missing or out of date (arq pins ``redis<6`` and SAQ ``redis<8``, while
   Celery's kombu needs ``redis>=6.4`` and taskiq-redis ``redis>=8``: arq and SAQ get their own,
   ``benchmarks/.venv-peers/arq`` and ``.../saq``);
2. starts a private Redis on a free loopback port (``redis-server``, else the embedded Valkey),
   or uses ``--redis-url`` as given with ``--namespace`` as the prefix of every key it writes
   (then only namespaced systems run and nothing is flushed: the smoke test does this);
3. runs each scenario for each system in turn, ``--runs`` times, each measurement bounded by a
   time cap so that a slow, hung or failing system is recorded with the reason and never blocks
   the run;
4. writes RESULTS.md, results.json and results.png beside ``--out``.

Producers run as ``python -m benchmarks.producer SYSTEM ...`` in the system's environment;
workers are that environment's own worker commands, started after the jobs are queued; the
clock starts at the first job's INCR and stops at the last one's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.adapters import ADAPTERS
from benchmarks.harness import BENCH, ROOT, WORK, Caps, Sizes, System
from benchmarks.report import Run, write_chart, write_markdown
from benchmarks.scenarios import SCENARIO_KEYS, Bench
from benchmarks.server import BenchServer
from errands import __version__

__all__ = ["VENVS", "ensure_venv", "errands_version", "machine", "main"]

VENVS = {
    "peers": (BENCH / ".venv-peers", BENCH / "peers.txt"),
    "arq": (BENCH / ".venv-peers" / "arq", BENCH / "peers-arq.txt"),
    "saq": (BENCH / ".venv-peers" / "saq", BENCH / "peers-saq.txt"),
    # Celery with Flower, for the HTTP benchmark only (benchmarks/http.py).
    "flower": (BENCH / ".venv-peers" / "flower", BENCH / "peers-flower.txt"),
}


def errands_version() -> str:
    """The errands version benchmarked: its commit, and whether the tree had changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__} at {commit}" + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    """CPU model, cores, memory and OS of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"driver on Python {platform.python_version()}"
    )


def ensure_venv(name: str, log: Callable[[str], None]) -> str:
    """Create or update a peers' environment from its requirements; return an error or ""."""
    path, requirements = VENVS[name]
    stamp = path / ".bench-requirements"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return ""
    log(f"installing {requirements.name} into {path.relative_to(ROOT)}")
    python = path / "bin" / "python"
    steps = [[sys.executable, "-m", "venv", str(path)]] if not python.exists() else []
    steps.append([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)])
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            return f"could not install {requirements.name}: {done.stderr.strip()[-300:]}"
    stamp.write_text(wanted)
    return ""


def _versions_python(venv: str) -> str:
    if venv == "project":
        return sys.executable
    return str(VENVS[venv][0] / "bin" / "python")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--systems", default=",".join(ADAPTERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIO_KEYS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=Sizes.n, help="jobs in scenarios 1 and 2")
    parser.add_argument("--latency-n", type=int, default=Sizes.latency_n)
    parser.add_argument("--cpu-n", type=int, default=Sizes.cpu_n)
    parser.add_argument("--async-n", type=int, default=Sizes.async_n)
    parser.add_argument("--memory-n", type=int, default=Sizes.memory_n)
    parser.add_argument("--backlog-sizes", default=",".join(str(s) for s in Sizes.backlog))
    parser.add_argument("--backlog-k", type=int, default=Sizes.backlog_k)
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--redis-url", help="use this server as it is (never flushed)")
    parser.add_argument("--namespace", default="", help="key prefix on a --redis-url server")
    parser.add_argument("--no-setup", action="store_true", help="do not create the peers' envs")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--caps-scale", type=float, default=1.0, help="multiply every time cap")
    return parser.parse_args(argv)


def _caps(scale: float) -> Caps:
    base = Caps()
    return Caps(
        enqueue=base.enqueue * scale,
        processing=base.processing * scale,
        start=base.start,
        latency=base.latency * scale,
        fill=base.fill * scale,
        memory_fill=base.memory_fill * scale,
        backlog=base.backlog * scale,
        cpu=base.cpu * scale,
        async_=base.async_ * scale,
    )


def _caps_line(caps: Caps) -> str:
    return (
        "Time caps of this run (seconds): enqueue one by one or bulk "
        f"{caps.enqueue:g}, processing run {caps.processing:g}, latency window "
        f"{caps.latency:g}, backlog window {caps.backlog:g}, CPU window {caps.cpu:g}, async run "
        f"{caps.async_:g}; queueing {caps.fill:g} ({caps.memory_fill:g} for the memory "
        f"backlog); a worker's first job {caps.start:g}."
    )


def _chart(run: Run, results_json: Path, png: Path, log: Callable[[str], None]) -> None:
    if importlib.util.find_spec("matplotlib") is not None:
        write_chart(run, png)
        return
    python = VENVS["peers"][0] / "bin" / "python"
    if not python.exists():
        log("no matplotlib here nor in the peers' environment: no chart")
        return
    argv = [str(python), "-m", "benchmarks.report", str(results_json), "--chart", str(png)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        log(f"the chart failed: {done.stderr.strip()[-300:]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; return the exit code."""
    options = _parse(argv)
    started = time.monotonic()
    wall_start = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()[0]

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    names = [s.strip() for s in options.systems.split(",") if s.strip()]
    unknown = [s for s in names if s not in ADAPTERS]
    scenarios = [s.strip() for s in options.scenarios.split(",") if s.strip()]
    unknown += [s for s in scenarios if s not in SCENARIO_KEYS]
    if unknown:
        print(f"unknown system(s) or scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    systems = [System(name, _versions_python(ADAPTERS[name][1])) for name in names]
    if options.redis_url is None:
        for venv in sorted({ADAPTERS[name][1] for name in names} - {"project"}):
            error = "" if options.no_setup else ensure_venv(venv, log)
            if not error and not Path(_versions_python(venv)).exists():
                error = f"no environment for it: run without --no-setup to create {venv}"
            for system in systems:
                if ADAPTERS[system.name][1] == venv and error:
                    system.error = error
    sizes = Sizes(
        n=options.n,
        latency_n=options.latency_n,
        cpu_n=options.cpu_n,
        async_n=options.async_n,
        memory_n=options.memory_n,
        backlog=tuple(int(s) for s in options.backlog_sizes.split(",") if s),
        backlog_k=options.backlog_k,
    )
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(options.redis_url, f"{options.namespace}:", WORK).start()
    try:
        log(f"server {server.version()} at {server.url}")
        bench = Bench(
            server,
            systems,
            scenarios,
            options.runs,
            sizes,
            _caps(options.caps_scale),
            options.namespace,
            log,
        )
        run = bench.execute()
        run.meta.update(
            {
                "date": wall_start.strftime("%Y-%m-%d %H:%M UTC"),
                "command": " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])]),
                "machine": machine(),
                "server": f"{server.version()} ({server.kind})",
                "cpu_k": bench.cpu_k,
                "wall_s": time.monotonic() - started,
                "load": f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
                "method": [*METHOD, _caps_line(bench.caps)],
            }
        )
    finally:
        if not server.private:
            server.reset()
        server.stop()
    out: Path = options.out
    out.parent.mkdir(parents=True, exist_ok=True)
    results_json = out.with_name("results.json")
    results_json.write_text(run.to_json())
    write_markdown(run, out)
    if not options.no_chart:
        _chart(run, results_json, out.with_name("results.png"), log)
    log(f"wrote {out}")
    return 0


METHOD = [
    "Producers and workers of each system run in that system's virtual environment, as "
    "separate processes; the driver only starts them, polls the INCR counter every 2 ms, and "
    "stops them (SIGTERM to the process group of the pid it started, SIGKILL 0.5 s later).",
    "Processing, CPU, async and backlog runs queue every job first (with the system's fastest "
    "enqueue path, untimed: bulk, else 100 sends in flight for async systems, else one by one, "
    "from two producer processes for 5,000 jobs or more), then start the worker; a run is "
    "timed from the first INCR seen to the last, and its rate is jobs finished over that time "
    "(start-up never counts). A run also ends when no job finished for 1.5 s (the queue ran "
    "dry); its rate is then taken up to the last job.",
    "Processing and async: a fresh worker per run. Processing runs after the first reuse the "
    "queue, topped up with as many jobs as the previous run finished (flushed and refilled "
    "when that run finished most of them).",
    "Latency and backlog: one worker per configuration, and each run is a window taken "
    "after the previous one (latency: 500 jobs or the cap; backlog: 2,000 jobs of the same "
    "backlog).",
    "CPU: runs alternate 1 and 2 children (1, 2, 1, 2, 1, 2), each a fresh worker on a fresh "
    "queue of 470 jobs, timed over 400 jobs after 10 warm-up jobs; the speed-up is taken per "
    "pair of runs, a few seconds apart, so that a drift of the machine between them does "
    "not read as scaling.",
    "With 2 children, systems whose one worker command runs several children (errands, "
    "Celery, Dramatiq, Huey, TaskIQ, SAQ, streaq) start them together; RQ and arq run two "
    "worker processes, started together by the driver.",
    "Every measurement has a time cap so that the whole run fits in 30 minutes on 2 cores; a "
    "capped result is the rate over the jobs done by then, and says so in a note.",
    "Commands per job come from INFO commandstats around a processing run (1 child), with the "
    "driver's own commands and the task's INCR taken out; Redis counts the calls made inside "
    "Lua scripts and functions as commands too.",
    "Memory per job: INFO used_memory after FLUSHALL SYNC (and after any pending lazy free) "
    "and after queueing, divided by the jobs queued.",
    "The CPU loop is calibrated to ~5 ms (best of 7, on the driver's interpreter, the same "
    "Python version as the peers') just before each system's turn: this machine's speed "
    "drifts by a third within the hour, and jobs that shrink to 4 ms make every fixed cost "
    "weigh more.",
    "The machine is shared with other work: the load average is given above; CPU scaling "
    "with 2 children needs 2 idle cores and is the first figure to suffer from that load.",
]


if __name__ == "__main__":
    sys.exit(main())
