"""Real worker processes for the integration tests, and the events their tasks record.

`Workers` starts ``python -m errands worker tests.integration.worker_app:app ...`` from the repo
root with the test's broker URL and namespace in its environment, waits (bounded) for its
"serving" log line, and at the end stops only the processes it started, by pid: SIGTERM, then
SIGKILL after a bound. `Events` reads what the tasks of `worker_app` pushed, blocking with a
bound instead of sleeping.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import redis

from tests.integration.worker_app import events_key

__all__ = [
    "ROOT",
    "Events",
    "WorkerProcess",
    "Workers",
    "free_port",
    "process_gone",
    "stop_cleanly",
    "wait_until",
]

ROOT = Path(__file__).resolve().parents[2]
APP_SPEC = "tests.integration.worker_app:app"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0

Event = dict[str, Any]


def process_gone(pid: int) -> bool:
    """True when no process `pid` runs (missing, or a zombie waiting for its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rpartition(")")[2].split()[0] in ("Z", "X")


def free_port() -> int:
    """A loopback port nothing listens on now (for a test's own Redis server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return once `condition()` holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.02)


def stop_cleanly(worker: WorkerProcess) -> None:
    """SIGTERM: the worker must exit 0, and nothing it logged may be a traceback."""
    worker.signal(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.log()
    assert "Traceback" not in worker.log()


class WorkerProcess:
    """One worker started by `Workers`, its output in a log file.

    Args:
        proc: the supervisor process.
        log_path: the file its stdout and stderr (and its children's) go to.
        log_file: the open handle of that file, closed by `close`.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, log_file: IO[bytes]) -> None:
        self.proc = proc
        self.log_path = log_path
        self._log_file = log_file

    @property
    def pid(self) -> int:
        """The supervisor's pid."""
        return self.proc.pid

    def running(self) -> bool:
        """True while the supervisor has not exited."""
        return self.proc.poll() is None

    def log(self) -> str:
        """Everything the worker has written so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = _START_TIMEOUT_S) -> None:
        """Return once `text` appears in the log; fail if the worker exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log():
            if not self.running():
                raise AssertionError(
                    f"the worker exited ({self.proc.returncode}) before logging {text!r}:\n"
                    + self.log()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the worker did not log {text!r} within {timeout_s:g}s:\n" + self.log()
                )
            time.sleep(0.02)

    def signal(self, signum: int) -> None:
        """Send `signum` to the supervisor (only if it still runs)."""
        if self.running():
            os.kill(self.pid, signum)

    def children(self) -> list[int]:
        """The pids of the supervisor's children (its pool), as the kernel lists them."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_all(self) -> None:
        """SIGKILL the supervisor and every child at once, as a crash of the machine would."""
        pids = [self.pid, *self.children()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=_STOP_TIMEOUT_S)

    def wait(self, timeout_s: float) -> int:
        """The supervisor's exit code; fail if it has not exited within `timeout_s`."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the worker did not exit within {timeout_s:g}s:\n" + self.log()
            ) from None

    def close(self) -> None:
        """Stop the supervisor if it still runs: SIGTERM, then SIGKILL after a bound."""
        if self.running():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=_STOP_TIMEOUT_S)
        self._log_file.close()


class Workers:
    """Starts workers for one test and stops every one of them at the end.

    Args:
        broker_url: the Redis the workers use.
        namespace: the test's key namespace.
        log_dir: where each worker's log file goes.
        app_spec: the app the workers run (``module:app``).
    """

    def __init__(
        self, broker_url: str, namespace: str, log_dir: Path, app_spec: str = APP_SPEC
    ) -> None:
        self.broker_url = broker_url
        self.namespace = namespace
        self.log_dir = log_dir
        self.app_spec = app_spec
        self.started: list[WorkerProcess] = []

    def spawn(
        self, *args: str, env: Mapping[str, str] | None = None, command: str = "worker"
    ) -> WorkerProcess:
        """Start a worker (or another `command`: ``beat``) with these CLI arguments; do not
        wait for it to serve."""
        environment = {
            **os.environ,
            "ERRANDS_BROKER_URL": self.broker_url,
            "ERRANDS_TEST_NAMESPACE": self.namespace,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        log_path = self.log_dir / f"{command}-{len(self.started) + 1}.log"
        log_file = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "errands", command, self.app_spec, *args],
            cwd=ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: a test may SIGKILL the whole worker
        )
        worker = WorkerProcess(proc, log_path, log_file)
        self.started.append(worker)
        return worker

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        """Start a worker and return once it logs that it is serving."""
        worker = self.spawn(*args, env=env)
        worker.wait_for_log("serving")
        return worker

    def start_many(self, count: int, *args: str) -> list[WorkerProcess]:
        """Start `count` workers side by side and return once every one is serving."""
        started = [self.spawn(*args) for _ in range(count)]
        for worker in started:
            worker.wait_for_log("serving")
        return started

    def close(self) -> None:
        """Stop every worker this object started that still runs."""
        for worker in self.started:
            worker.close()


class Events:
    """The events the tasks of `worker_app` pushed, read as they come.

    Args:
        broker_url: the Redis the tasks record to.
        namespace: the test's key namespace.
    """

    def __init__(self, broker_url: str, namespace: str) -> None:
        self._client = redis.Redis.from_url(broker_url)
        self._key = events_key(namespace)
        self.seen: list[Event] = []

    def _take(self, timeout_s: float) -> bool:
        reply = self._client.blpop([self._key], timeout=timeout_s)
        if reply is None:
            return False
        self.seen.append(json.loads(reply[1]))
        return True

    def matching(self, **match: Any) -> list[Event]:
        """The events seen so far whose fields equal `match`, oldest first."""
        return [e for e in self.seen if all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, count: int = 1, timeout_s: float = 15.0, **match: Any) -> list[Event]:
        """Block until `count` events match `match`; return them, oldest first.

        Raises:
            AssertionError: fewer arrived within `timeout_s`; the message lists what came.
        """
        deadline = time.monotonic() + timeout_s
        while len(self.matching(**match)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"waited {timeout_s:g}s for {count} event(s) {match}; seen: {self.seen}"
                )
            self._take(min(remaining, 1.0))
        return self.matching(**match)[:count]

    def drain(self) -> list[Event]:
        """Read every event pushed so far without waiting; return all seen."""
        raw: list[bytes] | None = self._client.lpop(self._key, 10_000)  # type: ignore[assignment]
        self.seen.extend(json.loads(item) for item in raw or [])
        return self.seen

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
