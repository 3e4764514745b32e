"""Running one job: outcomes, retry decisions, and jobs that cannot run."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from errands import App, Retry, TaskContext, current_task
from errands.message import JobRecord
from errands.testing import MemoryBroker
from errands.worker.execution import Executor, Prepared
from errands.worker.protocol import Finished, Job


def _job(task: str, *args: object, attempt: int = 1, **kwargs: object) -> Job:
    record = JobRecord(id="j1", task=task, queue="default", args=list(args), kwargs=kwargs)
    return Job("j1", msgspec.json.encode(record), attempt)


def _run(app: App, job: Job) -> tuple[Finished, dict[str, object]]:
    executor = Executor(app, lambda _: False)
    prepared = executor.prepare(job)
    finished = prepared if isinstance(prepared, Finished) else executor.run_sync(prepared)
    assert isinstance(finished, Finished)
    return finished, msgspec.json.decode(finished.outcome)


@pytest.fixture
def app() -> App:
    return App(broker=MemoryBroker())


def test_a_returned_value_is_the_outcome(app: App) -> None:
    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    finished, outcome = _run(app, _job("add", 1, y=2))
    assert finished.kind == "succeeded"
    assert (outcome["state"], outcome["result"], outcome["attempts"]) == ("succeeded", 3, 1)


def test_a_result_that_is_not_json_fails_without_retry(app: App) -> None:
    @app.task(name="bad")
    def bad() -> object:
        return {1, 2}

    finished, outcome = _run(app, _job("bad"))
    assert finished.kind == "failed"
    assert "the result is a set" in str(outcome["error"])


def test_an_error_is_retried_with_a_backoff_while_attempts_remain(app: App) -> None:
    @app.task(name="flaky", max_retries=2, retry_backoff=1, retry_jitter=False)
    def flaky() -> None:
        raise ConnectionError("down")

    first, _ = _run(app, _job("flaky", attempt=1))
    second, _ = _run(app, _job("flaky", attempt=2))
    last, outcome = _run(app, _job("flaky", attempt=3))
    assert (first.kind, first.retry_delay_ms) == ("retrying", 1000)
    assert (second.kind, second.retry_delay_ms) == ("retrying", 2000)
    assert last.kind == "failed"
    error = outcome["error"]
    assert isinstance(error, dict)
    assert error["type"] == "ConnectionError"
    assert "raise ConnectionError" in error["traceback"]


def test_dont_autoretry_for_fails_at_once(app: App) -> None:
    @app.task(name="strict", dont_autoretry_for=(ValueError,))
    def strict() -> None:
        raise ValueError("bad input")

    assert _run(app, _job("strict"))[0].kind == "failed"


def test_retry_with_a_countdown_uses_that_delay_and_records_the_cause(app: App) -> None:
    @app.task(name="later", bind=True)
    def later(ctx: TaskContext) -> None:
        ctx.retry(countdown=7, exc=KeyError("missing"))

    finished, outcome = _run(app, _job("later"))
    assert (finished.kind, finished.retry_delay_ms) == ("retrying", 7000)
    assert outcome["error"] == {
        "type": "KeyError",
        "message": "'missing'",
        "traceback": outcome["error"]["traceback"],  # type: ignore[index]
    }


def test_arguments_that_do_not_fit_the_task_fail_without_retry(app: App) -> None:
    @app.task(name="one")
    def one(x: int) -> int:
        return x

    finished, outcome = _run(app, _job("one", 1, 2))
    assert finished.kind == "failed"
    assert "do not fit task 'one'" in str(outcome["error"])


def test_a_type_error_inside_the_task_is_retried_like_any_error(app: App) -> None:
    @app.task(name="inner")
    def inner(x: int) -> int:
        return x + "1"  # type: ignore[operator]

    assert _run(app, _job("inner", 1))[0].kind == "retrying"


def test_an_unknown_task_fails_with_the_registered_names(app: App) -> None:
    finished, outcome = _run(app, _job("nope"))
    assert finished.kind == "failed"
    assert "no task named 'nope'" in str(outcome["error"])


def test_a_bound_task_sees_its_context_and_current_task_is_set(app: App) -> None:
    seen: list[object] = []

    @app.task(name="ctx", bind=True)
    def ctx_task(ctx: TaskContext) -> str:
        seen.append(current_task())
        return f"{ctx.id} {ctx.task} {ctx.attempt} {ctx.queue}"

    _, outcome = _run(app, _job("ctx", attempt=2))
    assert outcome["result"] == "j1 ctx 2 default"
    assert isinstance(seen[0], TaskContext)
    assert current_task() is None


def test_retry_raised_without_bind_works_too(app: App) -> None:
    @app.task(name="plain")
    def plain() -> None:
        raise Retry(countdown=0.5)

    finished, _ = _run(app, _job("plain"))
    assert (finished.kind, finished.retry_delay_ms) == ("retrying", 500)


async def test_an_async_task_past_its_soft_limit_is_cancelled(app: App) -> None:
    cleaned: list[str] = []

    @app.task(name="slow", soft_time_limit=0.05, time_limit=1)
    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        finally:
            cleaned.append("cleaned")

    executor = Executor(app, lambda _: False)
    prepared = executor.prepare(_job("slow"))
    assert isinstance(prepared, Prepared)
    finished = await executor.run_async(prepared)
    assert "SoftTimeLimitExceeded" in msgspec.json.decode(finished.outcome)["error"]["type"]
    assert cleaned == ["cleaned"]
