"""Repeated warnings collapse into one line every few seconds that says how many it stands for."""

from __future__ import annotations

import logging

import pytest

from errands.errors import BrokerUnavailable
from errands.observe.throttle import Throttle, ThrottleFilter
from errands.worker.outage import Outage


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_event_passes_then_one_per_window_with_the_count_of_the_dropped() -> None:
    clock = Clock()
    throttle = Throttle(5.0, clock)
    assert throttle.admit("redis") == 0
    clock.now += 1
    assert [throttle.admit("redis") for _ in range(7)] == [None] * 7
    clock.now += 4
    assert throttle.admit("redis") == 7
    clock.now += 4.9
    assert throttle.admit("redis") is None
    clock.now += 0.1
    assert throttle.admit("redis") == 1


def test_kinds_are_throttled_apart_and_a_reset_kind_passes_at_once() -> None:
    clock = Clock()
    throttle = Throttle(5.0, clock)
    assert throttle.admit("a") == 0
    assert throttle.admit("b") == 0
    assert throttle.admit("a") is None
    throttle.reset("a")
    assert throttle.admit("a") == 0


def test_the_kinds_remembered_are_bounded() -> None:
    throttle = Throttle(5.0, Clock(), kinds=3)
    for kind in range(10):
        assert throttle.admit(kind) == 0
    assert throttle.admit(9) is None  # still remembered
    assert throttle.admit(0) == 0  # forgotten: passes as new


def _collecting_logger(name: str, clock: Clock) -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(name)
    logger.handlers[:] = [Collect()]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.filters[:] = [ThrottleFilter(Throttle(5.0, clock))]
    return logger, lines


def test_the_filter_collapses_records_of_one_template_and_appends_the_count() -> None:
    clock = Clock()
    logger, lines = _collecting_logger("errands.test.throttle", clock)
    for second in range(12):
        clock.now = 100.0 + second
        for _ in range(10):
            logger.warning("waiting on the broker failed (%s)", f"refused at {second}")
        logger.info("a job line is never throttled")
    warnings = [line for line in lines if line.startswith("waiting")]
    assert warnings == [
        "waiting on the broker failed (refused at 0)",
        "waiting on the broker failed (refused at 5) (49 more like this in the last 5 s)",
        "waiting on the broker failed (refused at 10) (49 more like this in the last 5 s)",
    ]
    assert lines.count("a job line is never throttled") == 12


def test_an_outage_logs_its_start_then_one_line_every_5_s_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = Outage("redis://db:6379/0", clock)
    error = BrokerUnavailable("cannot reach Redis at redis://db:6379/0 (refused)")
    with caplog.at_level(logging.INFO, logger="errands.worker"):
        for tenth in range(121):  # 12 s of failures, 10 a second, from three loops
            clock.now = 100.0 + tenth / 10
            outage.failed(("heartbeat", "exchange with Redis", "maintenance")[tenth % 3], error)
        outage.recovered()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 4, lines
    assert lines[0].startswith("heartbeat failed: cannot reach Redis")
    assert lines[1].startswith("Redis at redis://db:6379/0 still failing after 5s (51 failed calls")
    assert lines[1].endswith("(49 more like this in the last 5 s)")
    assert lines[2].startswith("Redis at redis://db:6379/0 still failing after 10s")
    assert lines[2].endswith("(49 more like this in the last 5 s)")
    assert lines[3] == "Redis at redis://db:6379/0 answers again after 12.0s (121 failed calls)"
