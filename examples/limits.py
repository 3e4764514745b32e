"""Limits: a partner API's rate shared by every worker, a cap on jobs at once, a tenant's own
rate, a task that meets the partner's own limit, and unique jobs.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/limits.py

It exits 0 when everything it shows held. See docs/limits.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os
import time

import redis

from errands import App, RateLimited, TaskContext
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

BROKER_URL = os.environ.get("ERRANDS_BROKER_URL", "redis://localhost:6379/0")
app = App(BROKER_URL, namespace=NAMESPACE)
RUNNING = f"{NAMESPACE}:example:running"

# The partner allows 10 calls a second for all of us together; its reports take 2 at once.
app.limiter("partner", rate="10/s")
app.limiter("reports", concurrency=2)
# Each tenant may send one invoice a second, whatever the others do.
app.limiter("per-tenant", rate="1/s", key=lambda tenant, number: tenant)


@app.task(name="limits.sync_contact", bind=True, limits=["partner"])
def sync_contact(ctx: TaskContext, contact: int) -> list[float]:
    """One partner call; returns when it started and on which attempt."""
    return [time.time(), ctx.attempt]


@app.task(name="limits.build_report", limits=["reports"])
def build_report(report: int) -> int:
    """A heavy report: counts how many run at once while it runs."""
    client = redis.Redis.from_url(BROKER_URL)
    try:
        at_once = client.incr(RUNNING)
        time.sleep(0.3)
        return int(at_once)  # type: ignore[arg-type]
    finally:
        client.decr(RUNNING)
        client.close()


@app.task(name="limits.send_invoice", limits=["per-tenant"])
def send_invoice(tenant: str, number: int) -> float:
    """One invoice of one tenant; returns when it was sent."""
    return time.time()


@app.task(name="limits.push_order", bind=True, limits=["partner"])
def push_order(ctx: TaskContext, order: int) -> int:
    """The partner answers 429 Too Many Requests the first time: wait as it says, unspent."""
    client = redis.Redis.from_url(BROKER_URL)
    try:
        if client.incr(f"{NAMESPACE}:example:order:{order}") == 1:
            raise RateLimited(retry_after=0.5)  # from its Retry-After header
        return ctx.attempt
    finally:
        client.close()


@app.task(name="limits.refresh_cache", unique=True)
def refresh_cache(user: int) -> None:
    """Asked for again and again by a busy page: one job per user while the key holds."""


def main() -> list[bool]:
    held = []
    calls = [sync_contact.delay(n) for n in range(30)]
    reports = [build_report.delay(n) for n in range(6)]
    invoices = {t: [send_invoice.delay(t, n) for n in range(3)] for t in ("acme", "globex")}
    order = push_order.delay(7)
    first = refresh_cache.delay(42)
    again = refresh_cache.delay(42)
    held.append(check("unique=True: the same arguments make one job", again.id == first.id))
    with (
        running_worker("examples.limits:app", "-c", "4"),
        running_worker("examples.limits:app", "-c", "4") as second,
    ):
        started = sorted(c.get(timeout=20)[0] for c in calls)
        busiest = max(sum(1 for t in started if s <= t < s + 1) for s in started)
        unspent = all(c.get(timeout=20)[1] == 1 for c in calls)
        # The limiter lets out at most 10 + 1.5 in any second (docs/limits.md); the starts are
        # timed in the tasks, a few ms after, so one more may fall in a second.
        held.append(
            check(
                "10/s shared by two workers (8 children)",
                busiest <= 12 and unspent,
                f"30 calls over {started[-1] - started[0]:.1f} s, at most {busiest} in a second",
            )
        )
        at_once = [r.get(timeout=20) for r in reports]
        held.append(check("at most 2 reports at once", max(at_once) <= 2, at_once))
        spans = {t: max(h.get(timeout=20) for h in hs) - min(h.get(timeout=20) for h in hs)
                 for t, hs in invoices.items()}  # fmt: skip
        held.append(
            check(
                "one invoice a second per tenant, tenants apart",
                all(span >= 1.5 for span in spans.values()),  # 2 s apart, give or take a start
                {t: f"{s:.1f} s for 3" for t, s in spans.items()},
            )
        )
        held.append(check("RateLimited runs it again unspent", order.get(timeout=20) == 1))
    held.append(stopped_cleanly(second))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
