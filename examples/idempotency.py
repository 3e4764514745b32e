"""Idempotency: a task that is safe to run twice, and idempotency keys that stop duplicate jobs.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/idempotency.py

Delivery is at-least-once: a job can run twice (a worker dies after the work, before the ack).
An idempotency key stops a second *enqueue*; only the task itself can make a second *run*
harmless. This example shows both. It exits 0 when everything it shows held.
See docs/idempotency.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from errands import App, AsyncResult, TaskContext

NAMESPACE = os.environ.get("ERRANDS_NAMESPACE", "errands-examples")
ROOT = Path(__file__).resolve().parents[1]
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


def check(what: str, held: bool, shown: object = None) -> bool:
    print(f"[{'held' if held else 'FAILED'}] {what}" + ("" if shown is None else f": {shown}"))
    return held


def before_the_worker() -> list[bool]:
    """Duplicates are refused at enqueue: the second call returns the first job's handle."""
    first = charge.apply_async((42, 1999), idempotency_key="charge:order-42")
    again = charge.apply_async((42, 1999), idempotency_key="charge:order-42")
    ready = app.broker.info("default").ready
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


def main() -> int:
    print(f"broker {app.broker_url}, namespace {NAMESPACE!r}")
    worker: subprocess.Popen[bytes] | None = None
    try:
        held = before_the_worker()
        argv = ["worker", "examples.idempotency:app", "--pool", "solo", "--log-level", "error"]
        worker = subprocess.Popen([sys.executable, "-m", "errands", *argv], cwd=ROOT)
        held += window_mode()
        held += until_finished_mode()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
        held.append(check("SIGTERM stops the worker cleanly", code == 0, f"exit code {code}"))
        return 0 if all(held) else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        clean()


def clean() -> None:
    """Delete every key of the example's namespace."""
    app.close()
    client = redis.Redis.from_url(app.broker_url)
    try:
        keys = list(client.scan_iter(match=f"{NAMESPACE}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
