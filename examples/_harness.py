"""What every example shares: printing its checks, running its worker, deleting its keys.

Not an example itself. An example imports it as ``examples._harness``: when it runs as a script
(``python examples/quickstart.py``) it first puts the repository root on ``sys.path``, and its
worker (``errands worker examples.quickstart:app``, started from the root) imports it from there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from errands import App

ROOT = Path(__file__).resolve().parents[1]
"""The repository root: workers start there, so that ``examples.<module>`` imports."""

NAMESPACE = os.environ.get("ERRANDS_NAMESPACE", "errands-examples")
"""The examples' key namespace; the tests give each run one of its own."""

STOP_TIMEOUT_S = 30.0
"""How long a worker has to exit after SIGTERM before it is killed."""


def check(what: str, held: bool, shown: object = None) -> bool:
    """Print ``[held] what: shown`` (``[FAILED]`` if it did not hold) and return held."""
    print(f"[{'held' if held else 'FAILED'}] {what}" + ("" if shown is None else f": {shown}"))
    return held


@contextmanager
def running_worker(spec: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``errands worker SPEC ARGS...`` from the repository root for the ``with`` block.

    On exit the worker gets SIGTERM, as systemd or Kubernetes send it: running jobs finish, then
    it exits. If it still runs after ``STOP_TIMEOUT_S`` it is killed. Either way its exit code
    is in ``worker.returncode`` afterwards (see ``stopped_cleanly``).
    """
    argv = [sys.executable, "-m", "errands", "worker", spec, *args]
    worker = subprocess.Popen(argv, cwd=ROOT)
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)  # a no-op if it already exited
        try:
            worker.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"worker still running {STOP_TIMEOUT_S:g} s after SIGTERM: killed")
            worker.kill()
            worker.wait()


def stopped_cleanly(worker: subprocess.Popen[bytes]) -> bool:
    """Check that a worker stopped by ``running_worker`` exited with code 0."""
    code = worker.returncode
    return check("SIGTERM stops the worker cleanly", code == 0, f"exit code {code}")


def clean(app: App) -> None:
    """Close the app and delete every key of its namespace."""
    app.close()
    client = redis.Redis.from_url(app.broker_url)
    try:
        keys = list(client.scan_iter(match=f"{app.namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def run(app: App, main: Callable[[], list[bool]]) -> int:
    """Run an example's main, then delete its keys; 0 when everything it showed held, else 1."""
    print(f"broker {app.broker_url}, namespace {app.namespace!r}")
    try:
        held = main()
    finally:
        clean(app)
    return 0 if all(held) else 1
