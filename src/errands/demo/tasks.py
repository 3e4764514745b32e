"""The demo's tasks: each one shows a lesson (priorities, retries, limits, idempotency...).

The app reads its broker from ERRANDS_BROKER_URL, which `errands demo` sets to the server it
starts; the namespace keeps the demo's keys apart from anything else on that server.
"""

from __future__ import annotations

import asyncio
import time

from errands import App, SoftTimeLimitExceeded, TaskContext

app = App(namespace="errands-demo", lease=10)


@app.task(queue="demo", priority=0, ignore_result=False)
def make_thumbnail(image: int) -> float:
    """Bulk work at the lowest priority; returns when it started."""
    started = time.time()
    time.sleep(0.05)
    return started


@app.task(queue="demo", priority=9)
def page_on_call(alert: str) -> float:
    """An urgent job: enqueued last, it runs first (priority 9 beats 0 inside a queue)."""
    return time.time()


@app.task(
    queue="demo",
    bind=True,
    max_retries=4,
    autoretry_for=(ConnectionError,),
    retry_backoff=0.2,
    retry_jitter=True,
)
def capture_payment(ctx: TaskContext, order: int) -> str:
    """Fails twice with ConnectionError, then succeeds: retried with backoff and full jitter."""
    if ctx.attempt < 3:
        ctx.log.info("payment gateway unreachable")
        raise ConnectionError("payment gateway unreachable")
    return f"order {order} paid on attempt {ctx.attempt}"


@app.task(queue="demo", soft_time_limit=0.5, time_limit=1.5, max_retries=0)
def export_everything(rows: int) -> str:
    """Ignores its soft limit and hangs: the hard limit kills its process; the worker goes on."""
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded:
        time.sleep(30)  # a task that ignores the warning: the supervisor kills it
    return "never"


@app.task(queue="demo", soft_time_limit=0.4, time_limit=2)
def build_report(pages: int) -> str:
    """Catches its soft limit and cleans up, returning a partial report."""
    done = 0
    try:
        for _ in range(pages):
            time.sleep(0.1)
            done += 1
    except SoftTimeLimitExceeded:
        return f"partial report: {done} of {pages} pages, temp files removed"
    return f"full report: {pages} pages"


@app.task(queue="demo")
def send_welcome(user: int) -> str:
    """Sent with an idempotency key: a duplicate request within the window is not enqueued."""
    return f"welcome mail to user {user}"


@app.task(queue="demo", max_retries=2, dont_autoretry_for=(ValueError,))
def import_invoice(number: str) -> None:
    """A ValueError is not retryable here: the job lands in the dead set on its first failure."""
    raise ValueError(f"invoice {number} has no customer")


@app.task(queue="demo")
async def fetch_rates(currency: str) -> str:
    """An async task: runs on the child's event loop, many at once."""
    await asyncio.sleep(0.1)
    return f"{currency} rates fetched"


@app.task(queue="demo")
def count_words(page: str) -> int:
    """A chord member: counts the words of one page."""
    return len(page.split())


@app.task(queue="demo")
def total_words(counts: list[int]) -> int:
    """A chord callback: gets every member's result, in order, once all have succeeded."""
    return sum(counts)


@app.task(queue="demo", bind=True, rate_limit="10/s")
def call_partner(ctx: TaskContext, n: int) -> list[float]:
    """A partner API allowing 10 calls a second, whatever the number of workers."""
    return [time.time(), ctx.attempt]


@app.periodic(every=1, id="demo-heartbeat")
@app.task(queue="demo", bind=True)
def heartbeat(ctx: TaskContext) -> float:
    """Fired every second by the scheduler the worker runs (--beat), once per second."""
    assert ctx.scheduled_for is not None
    return ctx.scheduled_for.timestamp()
