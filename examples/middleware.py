"""Middleware: a request id that travels with each job, an audit trail, a refusal at send time.

Run it from the repository root (Redis on localhost:6379, or ERRANDS_BROKER_URL):

    python examples/middleware.py

It exits 0 when everything it shows held. See docs/middleware.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make examples._harness importable from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextvars
import json
import os
from typing import Any, ClassVar

import msgspec
import redis

from errands import (
    App,
    ArgumentError,
    Execution,
    JobFailed,
    Middleware,
    Outgoing,
    TaskContext,
)
from errands.result import ErrorInfo
from examples._harness import NAMESPACE, check, run, running_worker, stopped_cleanly

#: The request being served by this process (a web framework would set it per request).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
BROKER_URL = os.environ.get("ERRANDS_BROKER_URL", "redis://localhost:6379/0")
AUDIT_KEY = f"{NAMESPACE}:example:audit"
WRITTEN_KEY = f"{NAMESPACE}:example:audit-written"  # one token per line, to wait on


class RequestId(Middleware):
    """Every job carries the id of the request that sent it (producer → task)."""

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        return msgspec.structs.replace(job, headers={**job.headers, "request_id": request_id.get()})


class Audit(Middleware):
    """Tasks marked ``extras={"audit": "<trail>"}`` leave a line per run and per death."""

    task_options: ClassVar[frozenset[str]] = frozenset({"audit"})

    def __init__(self, url: str) -> None:
        self.url = url

    def _write(self, entry: dict[str, Any]) -> None:
        client = redis.Redis.from_url(self.url)
        try:
            client.rpush(AUDIT_KEY, json.dumps(entry))
            client.rpush(WRITTEN_KEY, 1)
        finally:
            client.close()

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        # In the process that ran the task: a child of the worker's process pool.
        if "audit" in ctx.extras:
            trail = ctx.extras["audit"]
            self._write({"trail": trail, "task": ctx.task, "state": execution.state})

    def on_dead(self, queue: str, job_id: str, error: ErrorInfo | None) -> None:
        # In the worker's supervisor, once the job is in the dead set.
        self._write({"dead": job_id, "error": error.type if error else None})


class Closed(Middleware):
    """Refuse new jobs of a task, with an error the caller sees (nothing is sent)."""

    closed: ClassVar[set[str]] = {"middleware.legacy_export"}

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        if job.task in self.closed:
            raise ArgumentError(f"{job.task} is retired: use middleware.export instead")
        return job


app = App(BROKER_URL, namespace=NAMESPACE, middleware=[RequestId(), Audit(BROKER_URL), Closed()])


@app.task(name="middleware.greet", bind=True, extras={"audit": "greetings"})
def greet(ctx: TaskContext, name: str) -> str:
    return f"hello {name} (request {ctx.headers.get('request_id')})"


@app.task(name="middleware.charge", max_retries=0, extras={"audit": "payments"})
def charge(order: int) -> None:
    raise KeyError(f"no card for order {order}")


@app.task(name="middleware.legacy_export")
def legacy_export() -> None: ...


def audit_lines(count: int) -> list[dict[str, Any]]:
    """The audit trail once it holds `count` lines (on_dead comes just after the job's ack)."""
    client = redis.Redis.from_url(app.broker_url)
    try:
        for _ in range(count):
            if client.blpop([WRITTEN_KEY], timeout=10) is None:
                break
        raw: list[bytes] = client.lrange(AUDIT_KEY, 0, -1)  # type: ignore[assignment]
        return [json.loads(line) for line in raw]
    finally:
        client.close()


def run_with_worker() -> list[bool]:
    held = []
    request_id.set("req-42")
    greeting = greet.delay("Ada").get(timeout=15)
    held.append(check("the request id travels with the job", "req-42" in greeting, greeting))

    failed = charge.delay(7)
    try:
        failed.get(timeout=15)
    except JobFailed as error:
        print(f"charge failed for good: {error.error_type}")
    lines = audit_lines(3)
    trails = sorted((line.get("trail"), line.get("state")) for line in lines if "trail" in line)
    wanted = [("greetings", "succeeded"), ("payments", "failed")]
    held.append(check("audited tasks leave a line per run", trails == wanted, trails))
    dead = [line for line in lines if line.get("dead") == failed.id]
    held.append(check("on_dead hears of the dead job", len(dead) == 1, dead))

    try:
        legacy_export.delay()
    except ArgumentError as error:
        held.append(check("a middleware refuses a send", "retired" in str(error), error))
    else:
        held.append(check("a middleware refuses a send", False))
    return held


def main() -> list[bool]:
    with running_worker("examples.middleware:app", "-c", "1", "--log-level", "error") as worker:
        held = run_with_worker()
    held.append(stopped_cleanly(worker))
    return held


if __name__ == "__main__":
    sys.exit(run(app, main))
