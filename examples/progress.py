"""Progress: a long job says how far it got; anyone can read it while it runs.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/progress.py

The task reports after each row, 20,000 times in all; the worker writes at most one report per
job every half second, so Redis sees a handful. The producer reads the progress while the job
runs (as a web page would), then the result; a finished job's progress is gone, a dead one's
stays. It exits 0 when everything it shows held. See docs/tasks.md#progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import time
from typing import Any

from errands import App, AsyncResult, JobFailed, Progress, TaskContext
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

app = App(namespace=NAMESPACE)


@app.task(name="progress.import_rows", bind=True, max_retries=0)
def import_rows(ctx: TaskContext, rows: int, fail_at: int | None = None) -> int:
    for row in range(1, rows + 1):
        time.sleep(0.0001)  # one row's work
        if row == fail_at:
            raise ValueError(f"row {row} is not valid CSV")
        # As often as you like: a tight loop costs a handful of Redis writes.
        ctx.set_progress(row / rows, f"imported {row:,} of {rows:,} rows", table="customers")
    return rows


def watch(handle: AsyncResult[Any]) -> list[Progress]:
    """Read the job's progress until it finishes, as a status page would poll it."""
    seen: list[Progress] = []
    deadline = time.monotonic() + 20
    while not handle.ready() and time.monotonic() < deadline:
        progress = handle.progress  # None until the first report reaches Redis
        if progress is not None and (not seen or progress != seen[-1]):
            print(f"       {progress.fraction:.0%} {progress.message} {progress.data}")
            seen.append(progress)
        time.sleep(0.1)
    return seen


def main() -> list[bool]:
    with running_worker("examples.progress:app", "-c", "1", "--log-level", "error") as worker:
        handle = import_rows.delay(20_000)
        seen = watch(handle)
        held = [check("the progress is read while the job runs", bool(seen), len(seen))]
        fractions = [p.fraction or 0.0 for p in seen]
        held.append(check("it only moves forward", fractions == sorted(fractions)))
        held.append(check("the job finishes", handle.get(timeout=20) == 20_000))
        held.append(check("a finished job's progress is gone", handle.progress is None))

        broken = import_rows.delay(20_000, fail_at=12_000)
        watch(broken)
        try:
            broken.get(timeout=20)
        except JobFailed as error:
            print(f"       get() raised: {error}")
        last = broken.progress
        died_at = last.message if last else "nothing"
        held.append(check("a dead job keeps where it got", last is not None, died_at))
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
