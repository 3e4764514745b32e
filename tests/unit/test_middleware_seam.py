"""The seam's hooks for observers: a chain step's headers from its parent's run, the app, the
exception of a failed run (what `Tracing` and `SentryReports` hang on)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from errands import App, TaskContext, chain
from errands.middleware import Execution, Middleware, Outgoing
from errands.testing import MemoryBroker, run_jobs


class Tenant(Middleware):
    """Passes the running job's tenant on to the chain's next step, and records what it sees."""

    def __init__(self) -> None:
        self.app: App | None = None
        self.sent: dict[str, dict[str, Any]] = {}
        self.exceptions: list[BaseException | None] = []

    def bind(self, app: App) -> None:
        self.app = app

    def before_enqueue(self, job: Outgoing) -> Outgoing:
        self.sent[job.id] = dict(job.headers)
        return job

    def follow_up_headers(self, ctx: TaskContext) -> dict[str, Any]:
        return {"tenant": f"of {ctx.id}"}

    def after_execute(self, ctx: TaskContext, execution: Execution) -> None:
        self.exceptions.append(execution.exception)


class NotJson(Middleware):
    def follow_up_headers(self, ctx: TaskContext) -> dict[str, Any]:
        return {"when": object()}


def test_a_chain_step_carries_the_headers_its_parents_run_gave() -> None:
    tenant = Tenant()
    app = App(broker=MemoryBroker(), middleware=[tenant])
    seen: dict[str, dict[str, Any]] = {}

    @app.task(name="add", bind=True)
    def add(ctx: TaskContext, x: int, y: int) -> int:
        seen[ctx.id] = dict(ctx.headers)
        return x + y

    result = chain(add.s(1, 2), add.partial(10)).delay()
    assert run_jobs(app) == 2
    first, second = result.steps
    assert tenant.sent[first.id] == {}
    assert tenant.sent[second.id] == {"tenant": f"of {first.id}"}  # the supervisor's view
    assert seen[second.id] == {"tenant": f"of {first.id}"}
    assert tenant.app is app


def test_headers_that_are_not_json_are_logged_and_the_step_goes_without_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(broker=MemoryBroker(), middleware=[NotJson(), Tenant()])

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    with caplog.at_level(logging.ERROR, logger="errands.middleware"):
        result = chain(add.s(1, 2), add.partial(10)).delay()
        assert run_jobs(app) == 2
    assert result.get(timeout=1) == 13
    assert "NotJson failed in follow_up_headers" in caplog.text


def test_after_execute_gets_the_exception_a_run_raised() -> None:
    tenant = Tenant()
    app = App(broker=MemoryBroker(), middleware=[tenant])
    error = KeyError("the very one")

    @app.task(name="fails", max_retries=0)
    def fails() -> None:
        raise error

    @app.task(name="works")
    def works() -> None:
        pass

    fails.delay()
    works.delay()
    run_jobs(app)
    assert len(tenant.exceptions) == 2
    assert None in tenant.exceptions  # the run that succeeded
    assert [e for e in tenant.exceptions if e is not None] == [error]
    assert error.__traceback__ is not None
