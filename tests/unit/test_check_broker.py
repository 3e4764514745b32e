"""errands.testing.check_broker: a third party's broker is held to the suite, failures named."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from datetime import timedelta

import msgspec
import pytest

from errands.broker.memory_views import MemoryInspector
from errands.broker.types import Enqueued, NewJob
from errands.conformance import CHECKS
from errands.errors import ConfigurationError
from errands.testing import (
    BrokerCheckFailed,
    ManualClock,
    MemoryBroker,
    acheck_broker,
    check_broker,
)

PRIORITY_CHECKS = {
    "jobs_come_out_by_priority_then_fifo_across_ten_thousand_jobs",
    "a_promoted_job_queues_behind_jobs_already_ready_at_its_priority",
    # The inspector shows a job's priority, and finds the oldest ready job across priorities.
    "a_queue_summary_counts_its_jobs_its_oldest_ready_job_and_its_consumers",
    "a_job_shows_its_record_attempts_errors_worker_and_timings",
}
PAUSE_CHECK = "a_paused_queue_hands_out_nothing_until_resumed"


class FifoOnlyBroker(MemoryBroker):
    """A broker with a bug: it hands jobs out in the order they came, whatever their priority."""

    def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        return super().enqueue(queue, [msgspec.structs.replace(j, priority=0) for j in jobs])


class CountingBroker(MemoryBroker):
    """Counts how often it was closed; its inspector is not written yet."""

    closes: list[str]

    def __init__(self, clock: ManualClock, closes: list[str]) -> None:
        super().__init__(clock=clock)
        self.closes = closes

    @property
    def inspector(self) -> MemoryInspector:
        raise NotImplementedError("the inspector is not written yet")

    def close(self) -> None:
        self.closes.append("close")

    async def aclose(self) -> None:
        self.closes.append("aclose")


def test_a_broker_that_ignores_priority_fails_naming_the_priority_checks_and_only_them() -> None:
    clock = ManualClock()
    with pytest.raises(BrokerCheckFailed) as caught:
        check_broker(lambda: FifoOnlyBroker(clock=clock), clock=clock)
    assert set(caught.value.failures) == PRIORITY_CHECKS
    assert caught.value.ran == len(CHECKS)
    message = str(caught.value)
    assert message.startswith(f"{len(PRIORITY_CHECKS)} of {len(CHECKS)} broker checks failed:")
    assert (
        "- jobs_come_out_by_priority_then_fifo_across_ten_thousand_jobs: jobs should come out "
        "by priority (9 first)" in message
    )
    assert "- a_promoted_job_queues_behind_jobs_already_ready_at_its_priority: urgent, then" in (
        message
    )
    assert "(enqueue.py:" in message  # where in the suite it failed
    assert isinstance(caught.value, AssertionError)  # a failure, to unittest as to pytest


def test_a_correct_broker_passes_every_check_in_the_suites_order() -> None:
    clock = ManualClock(start_s=1_000.0)  # a clock far from real time: the checks read it
    assert check_broker(lambda: MemoryBroker(clock=clock), clock=clock) == list(CHECKS)


async def test_the_async_twin_runs_inside_an_event_loop() -> None:
    clock = ManualClock()
    ran = await acheck_broker(lambda: MemoryBroker(clock=clock), clock=clock, only=PRIORITY_CHECKS)
    assert sorted(ran) == sorted(PRIORITY_CHECKS)


def test_each_check_gets_a_broker_of_its_own_closed_after_it_even_when_it_fails() -> None:
    clock = ManualClock()
    closes: list[str] = []
    made: list[CountingBroker] = []

    def make() -> CountingBroker:
        made.append(CountingBroker(clock, closes))
        return made[-1]

    only = ["an_invalid_queue_name_is_refused", "info_counts_jobs_in_each_state"]
    with pytest.raises(BrokerCheckFailed) as caught:
        check_broker(make, clock=clock, only=only)
    assert len(made) == 2
    assert made[0] is not made[1]
    assert closes == ["close", "aclose"] * 2
    assert list(caught.value.failures) == ["info_counts_jobs_in_each_state"]
    # An error that is not an assertion is reported with its type.
    message = str(caught.value)
    assert message.startswith("1 of 2 broker checks failed:")
    assert (
        "- info_counts_jobs_in_each_state: NotImplementedError: the inspector is not written yet"
        in message
    )


def test_checks_are_selected_by_name_and_run_in_the_suites_order() -> None:
    clock = ManualClock()
    only = [PAUSE_CHECK, *sorted(PRIORITY_CHECKS)]
    ran = check_broker(lambda: MemoryBroker(clock=clock), clock=clock, only=only)
    assert ran == [name for name in CHECKS if name in only]


def test_an_unknown_check_name_is_refused_before_any_check_runs() -> None:
    made: list[MemoryBroker] = []

    def make() -> MemoryBroker:
        made.append(MemoryBroker())
        return made[-1]

    with pytest.raises(ConfigurationError, match="no broker check is named no_such_check"):
        check_broker(make, only=[PAUSE_CHECK, "no_such_check"])
    assert made == []


def test_the_suite_holds_every_check_once_each_a_documented_async_function() -> None:
    assert len(CHECKS) == 114  # a check dropped or added is a decision, made here
    for name, check in CHECKS.items():
        assert check.__name__ == f"check_{name}"
        assert inspect.iscoroutinefunction(check), name
        assert (check.__doc__ or "").strip(), f"{name} has no docstring"


def test_a_manual_clock_moves_only_forward_by_seconds_or_a_timedelta() -> None:
    clock = ManualClock(start_s=100.0)
    clock.advance(1.5)
    clock.advance(timedelta(milliseconds=500))
    assert clock() == 102.0
    with pytest.raises(ConfigurationError, match="only moves forward"):
        clock.advance(-1)
