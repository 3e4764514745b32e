"""Priorities and queues: strict priorities 0-9 inside a queue, queues served in strict order.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/priorities.py

Every job is sent before the worker starts, in the worst order: bulk work first, the urgent job
last. The worker (``-Q high,default --pool solo``: one job at a time) runs them by queue, then by
priority, then first in first out. It exits 0 when that order held. See docs/workers.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import time

from errands import App, ConfigurationError
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

app = App(namespace=NAMESPACE)


# The name is explicit: this file runs as __main__ here and as examples.priorities in the worker.
@app.task(name="priorities.work")  # priority 0 (the lowest) unless a call says otherwise
def work(label: str) -> float:
    time.sleep(0.01)
    return time.time()  # when it ran


def main() -> list[bool]:
    try:
        work.apply_async(("too urgent",), priority=10)
        refused = "accepted"
    except ConfigurationError as error:
        refused = str(error)
    held = [check("priorities are 0-9", refused.startswith("priority must be"), refused)]

    labels = [f"bulk-{i}" for i in range(5)] + ["normal-1", "normal-2", "urgent", "on high queue"]
    signatures = [work.s(f"bulk-{i}") for i in range(5)]  # priority 0, sent first
    signatures += [work.s("normal-1").set(priority=5), work.s("normal-2").set(priority=5)]
    signatures += [work.s("urgent").set(priority=9)]
    signatures += [work.s("on high queue").set(queue="high")]  # priority 0, another queue
    handles = app.enqueue_many(signatures)  # one Redis call per queue

    argv = ["-Q", "high,default", "--pool", "solo", "--log-level", "error"]
    with running_worker("examples.priorities:app", *argv) as worker:
        ran_at = {label: h.get(timeout=15) for label, h in zip(labels, handles, strict=True)}
    order = sorted(ran_at, key=ran_at.__getitem__)
    print("sent:", ", ".join(labels))
    print("ran: ", ", ".join(order))
    expected = ["on high queue", "urgent", "normal-1", "normal-2"]
    held.append(check("queue first, then priority 9, 5, 0", order[:4] == expected))
    held.append(check("FIFO inside a priority", order[4:] == [f"bulk-{i}" for i in range(5)]))
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
