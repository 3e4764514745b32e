"""Time limits: the soft limit raises inside the task, the hard limit kills its process.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/time_limits.py

The worker uses the process pool (the default), the only pool that enforces hard limits. The
jobs are sent one at a time so that each one runs alone in the worker's child process.
It exits 0 when everything it shows held. See docs/retries-and-limits.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncio
import os
import subprocess
import time
from typing import Any

from errands import App, AsyncResult, JobFailed, SoftTimeLimitExceeded
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

app = App(namespace=NAMESPACE)


# Names are explicit: this file runs as __main__ here and as examples.time_limits in the worker.
# max_retries=0 everywhere: a job over its limit would otherwise be retried (the default).
@app.task(name="time_limits.build_report", soft_time_limit=0.5, time_limit=2, max_retries=0)
def build_report(pages: int) -> str:
    done = 0
    try:
        for _ in range(pages):
            time.sleep(0.1)  # one page
            done += 1
    except SoftTimeLimitExceeded:  # raised inside the task, even in the middle of time.sleep
        return f"partial report: {done} of {pages} pages, temporary files removed"
    return f"full report: {pages} pages"


@app.task(name="time_limits.export", soft_time_limit=0.5, time_limit=1.5, max_retries=0)
def export_everything() -> str:
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded:
        time.sleep(30)  # ignores the warning: at 1.5 s the worker kills the process
    return "never"


@app.task(name="time_limits.crash", max_retries=0)
def crash() -> None:
    os._exit(3)  # a segfault or an OOM kill looks the same to the worker


@app.task(name="time_limits.fetch_pages", soft_time_limit=0.3, time_limit=1, max_retries=0)
async def fetch_pages(count: int) -> str:
    fetched = 0
    try:
        for _ in range(count):
            await asyncio.sleep(0.1)
            fetched += 1
    except asyncio.CancelledError:  # an async task is cancelled at its soft limit
        return f"fetched {fetched} of {count} pages before the soft limit"
    return f"fetched {count} pages"


@app.task(name="time_limits.ping")
def ping() -> str:
    return "pong"


def error_type(handle: AsyncResult[Any]) -> str:
    """The type of the error the job failed with, as get() reports it."""
    try:
        handle.get(timeout=20)
    except JobFailed as error:
        print(f"       get() raised: {error}")
        return error.error_type
    return "no error"


def run_with_worker(worker: subprocess.Popen[bytes]) -> list[bool]:
    report = build_report.delay(50).get(timeout=20)
    held = [check("the soft limit lets the task clean up", report.startswith("partial"), report)]

    shorter = build_report.apply_async((50,), soft_time_limit=0.2, time_limit=1.0)
    text = shorter.get(timeout=20)
    held.append(check("limits can be set per call", text.startswith("partial"), text))

    kind = error_type(export_everything.delay())
    killed = kind.endswith("TimeLimitExceeded")
    held.append(check("past the hard limit the child is killed", killed))

    kind = error_type(crash.delay())
    lost = kind.endswith("WorkerLost")
    held.append(check("a child that dies fails its job as WorkerLost", lost))

    pages = fetch_pages.delay(50).get(timeout=20)
    held.append(check("an async task is cancelled at its soft limit", "before" in pages, pages))

    pong = ping.delay().get(timeout=20)
    alive = worker.poll() is None
    held.append(check("the worker carried on with fresh children", alive and pong == "pong"))
    return held


def main() -> list[bool]:
    with running_worker("examples.time_limits:app", "-c", "1", "--log-level", "error") as worker:
        held = run_with_worker(worker)
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
