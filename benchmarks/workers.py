"""Worker processes of one system, and the counter that says how many jobs they finished.

The driver starts every process of a worker in its own session, so that stopping it reaches
the children it forked: SIGTERM to the process group of the pid it started, SIGKILL after a
bound. It counts finished jobs by polling the INCR counter every few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from benchmarks.server import BenchServer

__all__ = ["BenchError", "Progress", "Workers", "read_count"]

_POLL_S = 0.002
_STOP_TIMEOUT_S = 0.5  # results are in by then: a graceful stop buys nothing
_STALL_S = 1.5  # no job finished for this long: stop waiting (arq polls every 0.5 s)


class BenchError(Exception):
    """A measurement that could not be made; the message is the reason shown in RESULTS.md."""


@dataclass(frozen=True)
class Progress:
    """Counter readings: the first one above zero, and the last one.

    Attributes:
        first_t: perf_counter() when the counter was first seen above zero.
        first_count: the counter then.
        last_t: perf_counter() at the last reading.
        last_count: the counter then.
        capped: the reading stopped at the time cap before the target.
    """

    first_t: float
    first_count: int
    last_t: float
    last_count: int
    capped: bool

    @property
    def rate(self) -> float:
        """Jobs per second between the first reading and the last."""
        elapsed = self.last_t - self.first_t
        done = self.last_count - self.first_count
        if elapsed <= 0 or done <= 0:
            raise BenchError("too few jobs finished to measure a rate")
        return done / elapsed


def read_count(server: BenchServer, key: str) -> int:
    """The counter's value (one GET, taken out of the command counts)."""
    server.counter.add("get")
    value = server.client.get(key)
    return int(value) if value is not None else 0


class Workers:
    """The processes of one worker deployment (one argv each), started at once.

    Args:
        argvs: one command per process.
        env: their environment.
        cwd: their working directory (the repo root, so ``benchmarks`` imports).
        log_path: where their output goes.
    """

    def __init__(
        self, argvs: Sequence[Sequence[str]], env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("wb")
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for argv in argvs:
                self.processes.append(
                    subprocess.Popen(
                        list(argv),
                        cwd=cwd,
                        env=dict(env),
                        stdin=subprocess.DEVNULL,
                        stdout=self._log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        except OSError:
            self.stop()
            raise

    def check(self) -> None:
        """Raise `BenchError` when a process exited on its own, with the end of its log."""
        for process in self.processes:
            code = process.poll()
            if code is not None:
                raise BenchError(f"worker exited with code {code}: {self.log_tail()}")

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the workers' output, on one line."""
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        tail = " / ".join(line.strip() for line in text[-lines:])
        return tail[:400] or "(empty log)"

    def wait(
        self, server: BenchServer, key: str, target: int, start_timeout_s: float, cap_s: float
    ) -> Progress:
        """Wait for the first finished job, then until `target` jobs or `cap_s` seconds.

        Raises:
            BenchError: no job finished within `start_timeout_s`, or a worker died.
        """
        deadline = time.perf_counter() + start_timeout_s
        checked = 0.0
        while True:
            count = read_count(server, key)
            now = time.perf_counter()
            if count > 0:
                break
            if now > deadline:
                raise BenchError(
                    f"no job finished within {start_timeout_s:g}s of starting the worker: "
                    f"{self.log_tail()}"
                )
            if now - checked > 0.25:
                self.check()
                checked = now
            time.sleep(_POLL_S)
        first_t, first_count = now, count
        changed_t, changed_count = now, count
        cap_deadline = first_t + cap_s
        while count < target:
            time.sleep(_POLL_S)
            count = read_count(server, key)
            now = time.perf_counter()
            if count != changed_count:
                changed_t, changed_count = now, count
            if count >= target:
                break
            if now > cap_deadline:
                return Progress(first_t, first_count, now, count, capped=True)
            if now - changed_t > _STALL_S:
                # The queue ran dry before the target (jobs a killed worker had prefetched
                # may be gone), or the worker stalled: the rate is up to the last finished job.
                return Progress(first_t, first_count, changed_t, changed_count, capped=False)
            if now - checked > 0.5:
                self.check()
                checked = now
        return Progress(first_t, first_count, now, count, capped=False)

    def stop(self) -> None:
        """Stop every process group: SIGTERM, then SIGKILL after a bound."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group may still hold children (a pool's) after its leader left: kill them too.
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self._log.close()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
