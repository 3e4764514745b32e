"""Retries: automatic retries with backoff and full jitter, ctx.retry(), the dead set, redrive.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/retries.py

The backoffs are shortened (0.05 to 0.1 s instead of the default 1 s) so it runs in seconds.
It exits 0 when everything it shows held. See docs/retries-and-limits.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import random
import subprocess
from typing import Any

import redis

from errands import App, AsyncResult, JobFailed, TaskContext
from errands.retry import backoff_delay
from examples._harness import NAMESPACE, ROOT, check, run, running_worker, stopped_cleanly

app = App(namespace=NAMESPACE)


class MissingCustomer(Exception):
    """Retrying cannot fix this: someone has to fix the data first."""


# Names are explicit: this file runs as __main__ here and as examples.retries in the worker.
@app.task(
    name="retries.charge",
    bind=True,
    autoretry_for=(ConnectionError,),  # only this error is retried; any other fails at once
    max_retries=4,  # 5 attempts at most
    retry_backoff=0.1,  # base delay in seconds (default True = 1 s), doubled per attempt
)
def charge(ctx: TaskContext, order: int) -> str:
    if ctx.attempt < 3:
        raise ConnectionError("payment gateway unreachable")
    return f"order {order} charged on attempt {ctx.attempt}"


@app.task(name="retries.poll_export", bind=True, max_retries=5)
def poll_export(ctx: TaskContext, export_id: str) -> str:
    if ctx.attempt < 3:
        ctx.retry(countdown=0.2)  # not ready yet: look again in 0.2 s (spends an attempt)
    return f"export {export_id} ready on attempt {ctx.attempt}"


@app.task(name="retries.always_down", max_retries=2, retry_backoff=0.05)
def always_down() -> None:
    raise ConnectionError("still down")


@app.task(name="retries.import_invoice", dont_autoretry_for=(MissingCustomer,))
def import_invoice(number: str) -> str:
    client = redis.Redis.from_url(app.broker_url)
    try:
        customer = client.get(f"{NAMESPACE}:example:customer-of:{number}")
    finally:
        client.close()
    if customer is None:
        raise MissingCustomer(f"invoice {number} has no customer")
    name = customer.decode() if isinstance(customer, bytes) else customer
    return f"invoice {number} imported for {name}"


def show_backoff() -> None:
    """The delay after failed attempt n is uniform in [0, min(cap, base * 2**(n-1))]."""
    rng = random.Random(7)
    print("default backoff (base 1 s, cap 600 s, full jitter):")
    for attempt in range(1, 5):
        ceiling = backoff_delay(attempt, 1.0, 600.0, jitter=False)
        drawn = backoff_delay(attempt, 1.0, 600.0, jitter=True, rng=rng)
        print(f"  after attempt {attempt}: uniform in [0, {ceiling:g}] s, e.g. {drawn:.2f} s")


def failure(handle: AsyncResult[Any]) -> JobFailed | None:
    """The error get() raises for a job that failed for good (None if it did not fail)."""
    try:
        handle.get(timeout=15)
    except JobFailed as error:
        return error
    return None


def run_with_worker() -> list[bool]:
    held = []
    paid = charge.delay(1001).get(timeout=15)
    held.append(check("ConnectionError is retried with backoff", "attempt 3" in paid, paid))
    ready = poll_export.delay("e-7").get(timeout=15)
    held.append(check("ctx.retry(countdown=...) runs it again", "attempt 3" in ready, ready))

    down = always_down.delay()
    error = failure(down)
    outcome = down.outcome()
    attempts = outcome.attempts if outcome else 0
    held.append(check("retries are finite: dead after 1 + 2 retries", attempts == 3, error))

    invoice = import_invoice.delay("INV-7")
    error = failure(invoice)
    kind = error.error_type if error else "no error"
    held.append(check("dont_autoretry_for: dead on the first failure", "Missing" in kind, kind))
    dead = [job.id for job in app.inspector.dead("default").items]
    held.append(check("the dead set keeps it", invoice.id in dead, f"{len(dead)} dead jobs"))
    record = app.inspector.job("default", invoice.id)  # what `errands status` shows
    story = record and (record.task, record.args, record.error and record.error.type)
    held.append(check("its record keeps task, arguments and error", bool(record), story))

    # Fix the data, then send the job back: `errands dead retry JOB_ID` (fresh attempts).
    client = redis.Redis.from_url(app.broker_url)
    client.set(f"{NAMESPACE}:example:customer-of:INV-7", "ACME")
    client.close()
    redrive = subprocess.run(
        [sys.executable, "-m", "errands", "dead", "retry", invoice.id, "--namespace", NAMESPACE],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    print(f"$ errands dead retry {invoice.id[:8]}...: {redrive.stdout.strip()}")
    imported = invoice.get(timeout=15)
    held.append(check("after redrive the same job succeeds", "ACME" in imported, imported))
    return held


def main() -> list[bool]:
    show_backoff()
    with running_worker("examples.retries:app", "--pool", "solo", "--log-level", "error") as worker:
        held = run_with_worker()
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
