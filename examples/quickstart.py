"""Quick start: define tasks, send jobs, run a worker, read the results.

Run it from the repository root, with Redis 7+ on localhost:6379 (or ERRANDS_BROKER_URL set):

    python examples/quickstart.py

It starts a worker the way you would in a terminal (``errands worker examples.quickstart:app``),
sends it jobs, prints what came back, stops the worker with SIGTERM and deletes its keys.
It exits 0 when everything it shows held. See docs/tasks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncio
import datetime as dt

from errands import App, ArgumentError, AsyncResult, JobCancelled, TaskContext
from errands.broker.types import CancelCode
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

# No I/O here: the app connects on first use, to $ERRANDS_BROKER_URL or redis://localhost:6379/0.
app = App(namespace=NAMESPACE)


# The tasks are named explicitly: this file runs as __main__ in the producer but is imported as
# examples.quickstart by the worker, and the default name (module.function) would differ.
@app.task(name="quickstart.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="quickstart.shout", bind=True)
def shout(ctx: TaskContext, text: str) -> str:
    ctx.log.info("shouting %r", text)  # the record carries the job id, task name and attempt
    return f"{text.upper()}! (attempt {ctx.attempt} of {ctx.max_retries + 1})"


@app.task(name="quickstart.double")
async def double(x: int) -> int:
    await asyncio.sleep(0.01)  # async tasks run concurrently on the worker child's event loop
    return 2 * x


def before_the_worker() -> tuple[list[bool], AsyncResult[int], AsyncResult[int]]:
    """Send jobs while no worker runs: they wait in Redis."""
    held = []
    try:
        # On purpose: `errands check` finds this before production; errands refuses it at once.
        when = dt.datetime.now(dt.UTC)
        app.send_task("quickstart.add", args=[1, when])  # errands: ignore[ERR201]
        refused = "accepted"
    except ArgumentError as error:  # refused at once: nothing reached Redis
        refused = str(error)
    held.append(check("a datetime argument is refused", refused.startswith("args[1]"), refused))

    now = add.delay(2, 3)  # arguments only; mypy checks them against add's signature
    held.append(check("add.delay(2, 3) waits for a worker", now.state == "queued", now.state))

    later = add.apply_async((20, 22), countdown=1)  # call options never mix with arguments
    held.append(check("countdown=1 schedules the job", later.state == "scheduled", later.state))

    never = add.apply_async((0, 0), countdown=60)
    code = never.cancel()
    held.append(check("a scheduled job is cancelled", code is CancelCode.CANCELLED, code.name))
    try:
        never.get(timeout=1)
        raised = "nothing"
    except JobCancelled as error:
        raised = str(error)
    held.append(check("get() on it raises JobCancelled", raised.endswith("was cancelled"), raised))
    return held, now, later


async def with_asyncio() -> int:
    """Every blocking call has an async twin: adelay, aapply_async, aget, acancel."""
    handle = await double.adelay(21)
    value = await handle.aget(timeout=10)
    await app.broker.aclose()
    return value


def with_the_worker(now: AsyncResult[int], later: AsyncResult[int]) -> list[bool]:
    """The worker runs what waited, then what we send now."""
    five = now.get(timeout=10)
    held = [check("the job sent before the worker started ran", five == 5, five)]
    outcome = now.outcome()
    attempts = outcome.attempts if outcome else 0
    held.append(check("its outcome is kept", now.state == "succeeded" and attempts == 1, outcome))

    handles = app.enqueue_many(add.s(i, i) for i in range(100))  # one Redis call per queue
    values = [handle.get(timeout=10) for handle in handles]
    held.append(check("100 jobs sent in bulk ran", values == [2 * i for i in range(100)]))

    text = shout.delay("hello").get(timeout=10)
    held.append(check("a bound task sees its context", text.startswith("HELLO!"), text))
    doubled = asyncio.run(with_asyncio())
    held.append(check("an async task, awaited with aget", doubled == 42, doubled))
    value = later.get(timeout=10)
    held.append(check("the scheduled job ran after its countdown", value == 42, value))
    return held


def main() -> list[bool]:
    held, now, later = before_the_worker()
    # What you would type in a terminal; --log-level warning keeps the output short.
    with running_worker("examples.quickstart:app", "-c", "1", "--log-level", "warning") as worker:
        held += with_the_worker(now, later)
    # Leaving the block sent SIGTERM, as systemd or Kubernetes do: running jobs finished first.
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
