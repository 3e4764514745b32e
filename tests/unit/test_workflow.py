"""Chains and groups, run in-process on the memory broker."""

from __future__ import annotations

import pytest

from errands import App, ConfigurationError, JobFailed, chain, chord, group
from errands.testing import MemoryBroker, run_jobs
from errands.workflow import next_job_id


@pytest.fixture
def app() -> App:
    return App(broker=MemoryBroker())


def test_a_chain_passes_each_result_to_the_next_partial_step(app: App) -> None:
    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="double")
    def double(x: int) -> int:
        return 2 * x

    result = chain(add.s(1, 2), double.partial(), add.partial(10)).delay()
    assert run_jobs(app) == 3
    assert result.get(timeout=1) == 16
    assert [step.get(timeout=1) for step in result.steps] == [3, 6, 16]


def test_a_full_signature_step_gets_only_its_own_arguments(app: App) -> None:
    @app.task(name="hello")
    def hello(name: str) -> str:
        return f"hello {name}"

    result = (hello.s("a") | hello.s("b")).delay()
    run_jobs(app)
    assert result.get(timeout=1) == "hello b"


def test_a_failed_step_stops_the_chain_and_get_raises_its_error(app: App) -> None:
    @app.task(name="boom", max_retries=0)
    def boom() -> int:
        raise ValueError("no")

    @app.task(name="after")
    def after(x: int) -> int:
        return x

    result = chain(boom.s(), after.partial()).delay()
    assert run_jobs(app) == 1
    with pytest.raises(JobFailed, match="ValueError: no"):
        result.get(timeout=1)
    assert app.broker.job_state("default", result.steps[1].id).state == "unknown"


def test_a_re_run_step_does_not_enqueue_its_successor_twice(app: App) -> None:
    @app.task(name="first")
    def first() -> int:
        return 1

    @app.task(name="second")
    def second(x: int) -> int:
        return x

    result = chain(first.s(), second.partial()).delay()
    run_jobs(app)
    # The successor's id is derived from its parent's, so enqueueing it again is a no-op.
    assert result.steps[1].id == next_job_id(result.steps[0].id)
    again = second.apply_async((1,), job_id=result.steps[1].id)
    assert again.id == result.steps[1].id
    assert run_jobs(app) == 0


def test_chain_steps_are_checked_when_the_chain_is_built(app: App) -> None:
    @app.task(name="pair")
    def pair(x: int, y: int) -> int:
        return x + y

    with pytest.raises(ConfigurationError, match="first step of a chain"):
        chain(pair.partial(1))
    with pytest.raises(Exception, match="missing 1 required positional argument"):
        chain(pair.s(1, 2), pair.partial())


def test_a_group_runs_its_members_and_returns_results_in_order(app: App) -> None:
    @app.task(name="square")
    def square(x: int) -> int:
        return x * x

    result = group(*(square.s(i) for i in range(5))).delay()
    assert run_jobs(app) == 5
    assert result.get(timeout=1) == [0, 1, 4, 9, 16]


def test_a_chain_step_can_go_to_another_queue(app: App) -> None:
    @app.task(name="fetch", queue="io")
    def fetch(url: str) -> str:
        return f"<html>{url}</html>"

    @app.task(name="parse", queue="cpu")
    def parse(html: str) -> int:
        return len(html)

    result = chain(fetch.s("x"), parse.partial()).delay()
    assert run_jobs(app, ["io"]) == 1
    assert app.inspector.queue("cpu").ready == 1
    assert run_jobs(app, ["cpu"]) == 1
    assert result.get(timeout=1) == len("<html>x</html>")


def test_a_chord_calls_back_once_with_every_result_in_member_order(app: App) -> None:
    @app.task(name="square")
    def square(x: int) -> int:
        return x * x

    @app.task(name="total")
    def total(values: list[int], offset: int) -> int:
        return sum(values) + offset

    result = chord([square.s(i) for i in range(4)], total.partial(100)).delay()
    assert run_jobs(app) == 5
    assert result.get(timeout=1) == 100 + 0 + 1 + 4 + 9
    assert result.members.get(timeout=1) == [0, 1, 4, 9]


def test_a_member_that_fails_for_good_fails_the_chord(app: App) -> None:
    @app.task(name="ok")
    def ok() -> int:
        return 1

    @app.task(name="bad", max_retries=0)
    def bad() -> int:
        raise KeyError("gone")

    @app.task(name="collect")
    def collect(values: list[int]) -> int:
        return len(values)

    result = chord([ok.s(), bad.s(), ok.s()], collect.partial()).delay()
    run_jobs(app)
    with pytest.raises(JobFailed, match=r"member .* failed with KeyError"):
        result.get(timeout=1)
    assert app.inspector.queue("default").ready == 0  # the callback never ran


def test_a_member_reporting_twice_is_counted_once(app: App) -> None:
    import asyncio

    @app.task(name="one")
    def one() -> int:
        return 1

    @app.task(name="count")
    def count(values: list[int]) -> int:
        return len(values)

    result = chord([one.s(), one.s()], count.partial()).delay()
    queue = result.callback.queue

    async def report_again() -> int:
        return await app.broker.chord_part(queue, result.id, 0, b"1")

    assert asyncio.run(report_again()) == 2  # first report of member 0
    assert asyncio.run(report_again()) == 1  # the same member again: not counted
    run_jobs(app)
    assert result.get(timeout=1) == 2
