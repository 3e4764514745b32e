"""Idempotency: a task that is safe to run twice, and idempotency keys that stop duplicate jobs.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/idempotency.py

Delivery is at-least-once: a job can run twice (a worker dies after the work, before the ack).
An idempotency key stops a second *enqueue*; only the task itself can make a second *run*
harmless. This example shows both. It exits 0 when everything it shows held.
See docs/idempotency.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import time

import redis

from errands import App, AsyncResult, TaskContext
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

app = App(namespace=NAMESPACE)


# Names are explicit: this file runs as __main__ here and as examples.idempotency in the worker.
@app.task(name="idempotency.charge", bind=True)
def charge(ctx: TaskContext, order: int, cents: int) -> str:
    """Charge an order once, however many times this job (or another for the order) runs."""
    client = redis.Redis.from_url(app.broker_url)
    try:
        # The guard and the effect in one atomic step: the charge is recorded only if none exists
        # for this order. In SQL: INSERT ... ON CONFLICT (order_id) DO NOTHING. With a payment
        # API, send ctx.id as its idempotency key: the job id stays the same on every run.
        created = client.set(f"{NAMESPACE}:example:charge:{order}", f"{cents}:{ctx.id}", nx=True)
    finally:
        client.close()
    return f"order {order}: charged {cents}" if created else f"order {order}: already charged"


@app.task(name="idempotency.rebuild_index")
def rebuild_index(name: str) -> str:
    time.sleep(0.2)  # rebuilding the whole index: safe to repeat, wasteful to run twice at once
    return f"index {name} rebuilt"


def before_the_worker() -> list[bool]:
    """Duplicates are refused at enqueue: the second call returns the first job's handle."""
    first = charge.apply_async((42, 1999), idempotency_key="charge:order-42")
    again = charge.apply_async((42, 1999), idempotency_key="charge:order-42")
    ready = app.inspector.queue("default").ready
    held = [check("the same key returns the first job", again.id == first.id, f"{ready} queued")]

    # Keys are scoped to a queue: the same key on another queue is another job.
    elsewhere = charge.apply_async((42, 1999), idempotency_key="charge:order-42", queue="other")
    held.append(check("another queue, another scope", elsewhere.id != first.id))
    elsewhere.cancel()

    # A job id of your own works the same way: a second enqueue of a known id is a no-op.
    one = rebuild_index.apply_async(("users",), job_id="rebuild-users-2024-06")
    two = rebuild_index.apply_async(("users",), job_id="rebuild-users-2024-06")
    held.append(check("a known job id is not enqueued twice", one.id == two.id, one.id))
    return held


def window_mode() -> list[bool]:
    """window (the default): the key holds for its ttl, however the job ended."""
    first = charge.apply_async((42, 1999), idempotency_key="charge:order-42")
    result = first.get(timeout=10)
    late = charge.apply_async((42, 1999), idempotency_key="charge:order-42")
    held = [check("after the job ran, the key still holds", late.id == first.id, result)]

    short = charge.apply_async((7, 500), idempotency_key="charge:order-7", idempotency_ttl=0.5)
    print(f"       {short.get(timeout=10)}")
    time.sleep(0.6)  # the window is over: the same key makes a new job
    second = charge.apply_async((7, 500), idempotency_key="charge:order-7", idempotency_ttl=0.5)
    text = second.get(timeout=10)
    held.append(check("after the ttl a new job runs", second.id != short.id, text))
    held.append(check("and the task's own guard stops a second charge", "already" in text))
    return held


def rebuild_products() -> AsyncResult[str]:
    return rebuild_index.apply_async(
        ("products",), idempotency_key="rebuild:products", idempotency_mode="until_finished"
    )


def until_finished_mode() -> list[bool]:
    """until_finished: the key holds while the job waits or runs, and is released when it ends."""
    first = rebuild_products()
    again = rebuild_products()
    held = [check("while it waits or runs, the key holds", again.id == first.id)]
    first.get(timeout=10)
    after = rebuild_products()
    text = after.get(timeout=10)
    held.append(check("once it finished, the same key makes a new job", after.id != first.id, text))
    return held


def main() -> list[bool]:
    held = before_the_worker()
    with running_worker(
        "examples.idempotency:app", "--pool", "solo", "--log-level", "error"
    ) as worker:
        held += window_mode()
        held += until_finished_mode()
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
