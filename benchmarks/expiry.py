"""Does Redis memory stay flat while results expire? errands at full speed, every result kept.

One worker (``errands worker benchmarks.expiry:app -Q tick-queue -c 2``) runs a no-op task,
``tick``, whose every result is kept `--ttl` seconds (``result_ttl``). This process keeps the
queue fed at whatever rate the worker sustains: when fewer than 2,000 jobs are ready it sends
batches of 1,000 (``App.enqueue_many``) up to 10,000, so the rate is the worker's maximum, not
a fixed one. Every `--sample` seconds it records ``INFO memory`` used_memory, the results held
(``HLEN`` of the results hash, ``ZCARD`` of its expiry index), the jobs succeeded and the rate
over the last interval.

At a steady rate, results held should settle near rate x ttl and memory should stop growing:
the verdict, over the samples after a 30 s warm-up, gives the sustained rate (median of the
intervals), the results held (median, max), the least-squares slope of used_memory, and
"flat" when the largest used_memory of the last third of those samples is within 10 % of the
largest of the middle third and the results held never exceed 2 x rate x ttl. It is a
measurement: the exit code is 0 either way; a run that is not flat says so.

Usage::

    python -m benchmarks.expiry                              # 300 s, ttl 10 s (make bench-expiry)
    python -m benchmarks.expiry --seconds 60 --out /tmp/EXPIRY.md

It starts a private Redis (`benchmarks.server.BenchServer`: ``redis-server`` on a free loopback
port, or the embedded Valkey) and stops it, and the worker, by pid at the end, on Ctrl-C or on
an error too. The worker's log goes to ``benchmarks/.work/logs/expiry-worker.log``.

The worker imports this module for its app: ``app`` is built on first access from
``ERRANDS_BROKER_URL``, ``ERRANDS_EXPIRY_NAMESPACE`` and ``ERRANDS_EXPIRY_TTL`` (seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from benchmarks.expiry_report import (
    BATCH,
    HIGH_MARK,
    LOW_MARK,
    WARM_UP_S,
    Context,
    Measured,
    Sample,
    Settings,
    judge,
    render,
    summary,
)
from benchmarks.harness import BENCH, ROOT, WORK
from benchmarks.run import errands_version, machine
from benchmarks.server import BenchServer
from errands import App, Task
from errands.broker.redis.keys import QueueKeys

__all__ = [
    "APP_SPEC",
    "QUEUE",
    "Probe",
    "Producer",
    "WorkerProcess",
    "build",
    "main",
    "measure",
    "parse_args",
]

QUEUE = "tick-queue"
APP_SPEC = "benchmarks.expiry:app"  # by its module name: run as __main__, this file is not it
NAMESPACE = "expiry"
ENV_URL = "ERRANDS_BROKER_URL"
ENV_NAMESPACE = "ERRANDS_EXPIRY_NAMESPACE"
ENV_TTL = "ERRANDS_EXPIRY_TTL"

CHILDREN = 2  # one per core on the 2-core machine this was written for
POLL_S = 0.02  # how often the producer looks at the backlog: 2,000 jobs last ~0.2 s
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0  # the grace period (5 s) and the giving back of prefetched jobs
_GRACE_S = 5.0


# The worker's app -----------------------------------------------------------------------------


def build(broker_url: str, namespace: str, ttl_s: float) -> tuple[App, Task[[int], int]]:
    """An app on `broker_url` and `namespace` with its one task, ``tick``.

    Args:
        broker_url: the Redis URL.
        namespace: the key namespace.
        ttl_s: seconds each result is kept (``result_ttl``).

    Returns:
        The app and its ``tick`` task.
    """
    app = App(broker_url, namespace=namespace, default_queue=QUEUE)

    # No ignore_result: storing every result, and expiring it, is what is measured.
    @app.task(name="tick", queue=QUEUE, result_ttl=ttl_s)
    def tick(n: int) -> int:
        """Return `n`: a no-op, so that the rate is errands' own."""
        return n

    return app, tick


_app: App | None = None


def __getattr__(name: str) -> App:
    """``app``: the worker's app, built from the environment when first asked for."""
    global _app  # one app per worker process, built on first use
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app, _ = build(
            os.environ[ENV_URL],
            os.environ.get(ENV_NAMESPACE, NAMESPACE),
            float(os.environ.get(ENV_TTL, "10")),
        )
    return _app


# The worker process ---------------------------------------------------------------------------


class WorkerProcess:
    """One ``errands worker`` on this module's app, its output in a log file.

    Args:
        broker_url: the Redis it uses.
        namespace: the key namespace.
        ttl_s: the result ttl its app's task declares (the same as the producer's).
        log_path: where its stdout and stderr (and its children's) go.
    """

    def __init__(self, broker_url: str, namespace: str, ttl_s: float, log_path: Path) -> None:
        self.log_path = log_path
        self.argv = [
            sys.executable, "-m", "errands", "worker", APP_SPEC,
            "-Q", QUEUE, "-c", str(CHILDREN), "--grace-period", str(_GRACE_S),
        ]  # fmt: skip
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env.update(
            {
                ENV_URL: broker_url,
                ENV_NAMESPACE: namespace,
                ENV_TTL: str(ttl_s),
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
                "PYTHONUNBUFFERED": "1",
            }
        )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this process only: it stops the worker
        )

    @property
    def command(self) -> str:
        """The worker's command line, for the report (without the interpreter's path)."""
        return " ".join(["python", *self.argv[1:]])

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of its log."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"

    def check(self) -> None:
        """Raise `RuntimeError` when the worker has exited (it never should by itself)."""
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"the worker exited with code {code}:\n{self.log_tail()}")

    def wait_serving(self, timeout_s: float = _START_TIMEOUT_S) -> None:
        """Return once the worker logs that it is serving; raise after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while "serving" not in self.log_path.read_text(errors="replace"):
            self.check()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker did not serve within {timeout_s:g}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it by pid: SIGTERM, then SIGKILL (its children too) after a bound."""
        if self.proc.poll() is None:
            # Its pool's pids, read before the signal: a SIGKILLed supervisor cannot stop them.
            children = _children(self.proc.pid)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for pid in [*children, self.proc.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait(timeout=_STOP_TIMEOUT_S)
        self._log.close()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


# Measurement ----------------------------------------------------------------------------------


class Probe:
    """Reads one `Sample` from the server and the queue.

    Args:
        server: the private server.
        app: the producer's app (its broker reads the queue's counters).
    """

    def __init__(self, server: BenchServer, app: App) -> None:
        self.server = server
        self.app = app
        prefix = QueueKeys(app.namespace, QUEUE).prefix
        self.results_key = prefix + "results"
        self.expiries_key = prefix + "results_x"
        self._last: Sample | None = None

    def read(self, elapsed_s: float) -> Sample:
        """A sample at `elapsed_s`, its rate over the interval since the previous one."""
        client = self.server.client
        info = self.app.inspector.queue(QUEUE)
        # INFO memory directly, not BenchServer.used_memory: that one waits for lazy frees,
        # which would shift the sampling clock; HDEL frees small results at once anyway.
        memory: dict[str, Any] = client.info("memory")
        results = int(client.hlen(self.results_key))
        expiries = int(client.zcard(self.expiries_key))
        succeeded = info.stats.get("succeeded", 0)
        last = self._last
        rate = None
        if last is not None and elapsed_s > last.elapsed_s:
            rate = (succeeded - last.succeeded) / (elapsed_s - last.elapsed_s)
        sample = Sample(
            elapsed_s, int(memory["used_memory"]), results, expiries, succeeded, info.ready, rate
        )
        self._last = sample
        return sample


class Producer:
    """Keeps the backlog between `LOW_MARK` and `HIGH_MARK`, so the worker never waits for work.

    Args:
        app: the producer's app.
        tick: its task.

    Attributes:
        sent: jobs sent so far (each job's argument is its number).
        polls: backlog readings.
        dry: readings that found no job ready: the worker may have waited for the producer.
        min_ready: the smallest backlog read.
    """

    def __init__(self, app: App, tick: Task[[int], int]) -> None:
        self.app = app
        self.tick = tick
        self.sent = 0
        self.polls = 0
        self.dry = 0
        self.min_ready = HIGH_MARK

    def top_up(self, ready: int) -> int:
        """Under `LOW_MARK` ready, send batches up to about `HIGH_MARK`; return the jobs sent."""
        if ready >= LOW_MARK:
            return 0
        added = 0
        for _ in range((HIGH_MARK - ready) // BATCH):
            first = self.sent
            self.app.enqueue_many([self.tick.s(n) for n in range(first, first + BATCH)])
            self.sent += BATCH
            added += BATCH
        return added

    def poll(self) -> int:
        """Read the backlog and top it up; return the jobs sent."""
        ready = self.app.inspector.queue(QUEUE).ready
        self.polls += 1
        self.dry += ready == 0
        self.min_ready = min(self.min_ready, ready)
        return self.top_up(ready)


def measure(settings: Settings, server: BenchServer, log_path: Path) -> Measured:
    """Run the worker and the producer for `settings.seconds`; stop the worker whatever happens."""
    app, tick = build(server.url, NAMESPACE, settings.ttl_s)
    producer = Producer(app, tick)
    worker: WorkerProcess | None = None
    try:
        # A full backlog before the worker starts: its first fetch finds work.
        producer.top_up(0)
        worker = WorkerProcess(server.url, NAMESPACE, settings.ttl_s, log_path)
        worker.wait_serving()
        probe = Probe(server, app)
        started = time.monotonic()
        samples = [probe.read(0.0)]
        _print_sample(samples[-1])
        due = settings.sample_s
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= due:
                samples.append(probe.read(elapsed))
                _print_sample(samples[-1])
                due += settings.sample_s
                if due > settings.seconds + 1e-9:
                    break
                continue
            worker.check()
            if not producer.poll():
                time.sleep(min(POLL_S, max(0.0, due - elapsed)))
        return Measured(
            samples, worker.command, producer.sent, producer.polls, producer.dry, producer.min_ready
        )
    finally:
        if worker is not None:
            worker.stop()
        app.close()


def _print_sample(sample: Sample) -> None:
    rate = f"{sample.rate:8,.0f}/s" if sample.rate is not None else "        -"
    print(
        f"{sample.elapsed_s:6.1f}s  used_memory {sample.used_memory / 2**20:7.2f} MiB  "
        f"results {sample.results:7,}  results_x {sample.expiries:7,}  "
        f"succeeded {sample.succeeded:10,}  ready {sample.ready:6,}  rate {rate}",
        flush=True,
    )


# Report ---------------------------------------------------------------------------------------


# Command line ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.expiry", description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0, help="run length (default 300)")
    parser.add_argument("--ttl", type=float, default=10.0, help="result_ttl, s (default 10)")
    parser.add_argument("--sample", type=float, default=5.0, help="s between samples (default 5)")
    parser.add_argument(
        "--out", type=Path, default=BENCH / "EXPIRY.md", help="the report (benchmarks/EXPIRY.md)"
    )
    args = parser.parse_args(argv)
    if args.ttl <= 0 or args.sample <= 0:
        parser.error("--ttl and --sample must be positive")
    if args.seconds < WARM_UP_S + 3 * args.sample:
        parser.error(
            f"--seconds must leave 3 samples after the {WARM_UP_S:g} s warm-up "
            f"(at least {WARM_UP_S + 3 * args.sample:g})"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write the report, print the verdict."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    settings = Settings(seconds=args.seconds, ttl_s=args.ttl, sample_s=args.sample)
    load_start = os.getloadavg()[0]
    started_utc = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, "", WORK)
    try:
        server.start()
        version = server.version()
        baseline = int(server.client.info("memory")["used_memory"])
        print(f"{version} at {server.url}; {settings.seconds:g} s, ttl {settings.ttl_s:g} s")
        run = measure(settings, server, WORK / "logs" / "expiry-worker.log")
    except KeyboardInterrupt:
        # The worker is stopped by now (measure's finally); the server is next. No report: a
        # partial one would replace the last complete run's.
        print("interrupted: the worker and the server are stopped, no report written")
        return 130
    finally:
        server.stop()
    verdict = judge(run.samples, settings)
    ctx = Context(
        command=" ".join(["python -m benchmarks.expiry", *arguments]),
        machine=machine(),
        load=f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        server=f"{version} ({server.kind})",
        errands=errands_version(),
        started_utc=started_utc,
        baseline_memory=baseline,
    )
    args.out.write_text(render(run, settings, verdict, ctx))
    print()
    print(
        f"producer: {run.dry:,} of {run.polls:,} backlog readings empty, smallest {run.min_ready:,}"
    )
    for line in summary(verdict, settings):
        print(line)
    if not verdict.flat:
        print("MEMORY IS NOT FLAT: see the samples above and in the report.")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
