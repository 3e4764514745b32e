"""The progress throttle and the supervisor's writer: few writes, the latest value, never a failure.

The throttle is pure (the tests pass the time), so what it lets through is counted, not timed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest

from errands.broker.memory import MemoryBroker
from errands.broker.types import NewJob, ProgressReport
from errands.errors import BrokerUnavailable
from errands.progress import INTERVAL_S, encode_progress, read_progress
from errands.worker.ledger import Ledger
from errands.worker.progress import TICK_S, Offered, ProgressOutbox, ProgressWriter, Throttle


def _rec(n: int) -> bytes:
    return b"r%d" % n


def test_the_first_report_goes_at_once_and_the_next_within_the_interval_waits() -> None:
    throttle = Throttle(0.5)
    assert throttle.offer("a", _rec(1), 10.0) is Offered.SEND
    assert throttle.offer("a", _rec(2), 10.1) is Offered.WAITS
    assert throttle.offer("a", _rec(3), 10.2) is Offered.REPLACED
    assert throttle.offer("b", _rec(1), 10.2) is Offered.SEND  # each job has its own interval
    assert throttle.next_due() == pytest.approx(10.5)
    assert throttle.due(10.49) == []
    assert throttle.due(10.5) == [("a", _rec(3))]  # the latest won; it goes at the trailing edge
    assert throttle.next_due() is None
    assert throttle.offer("a", _rec(4), 10.6) is Offered.WAITS  # the trailing one counts as sent


def test_a_report_after_a_quiet_interval_goes_at_once_in_place_of_a_waiting_one() -> None:
    throttle = Throttle(0.5)
    throttle.offer("a", _rec(1), 0.0)
    throttle.offer("a", _rec(2), 0.1)
    assert throttle.offer("a", _rec(3), 0.7) is Offered.SEND  # its timer had not run yet
    assert throttle.due(0.8) == []  # the older waiting report is gone: never sent after it


def test_100000_reports_in_a_tight_loop_let_through_one_per_interval_and_the_last() -> None:
    throttle = Throttle(INTERVAL_S)
    sent: list[bytes] = []
    now = 0.0
    for n in range(100_000):
        now = n * 0.00001  # a call every 10 µs: 1 s in all
        if throttle.offer("a", _rec(n), now) is Offered.SEND:
            sent.append(_rec(n))
        sent.extend(record for _, record in throttle.due(now))
    at = throttle.next_due()
    assert at is not None
    sent.extend(record for _, record in throttle.due(at))
    assert 2 <= len(sent) <= 1 + 1.0 / INTERVAL_S + 1
    assert sent[0] == _rec(0)
    assert sent[-1] == _rec(99_999)


def test_the_throttle_forgets_jobs_that_went_quiet() -> None:
    throttle = Throttle(0.5)
    for n in range(10_000):
        throttle.offer(f"job-{n}", _rec(n), n * 1.0)  # a new job every second, each reports once
    assert throttle.remembered() < 100


def _collecting() -> tuple[list[tuple[str, bytes]], threading.Event, ProgressOutbox]:
    received: list[tuple[str, bytes]] = []
    last = threading.Event()

    def send(reports: Sequence[tuple[str, bytes]]) -> None:
        received.extend(reports)
        if any(record == _rec(99_999) for _, record in reports):
            last.set()

    return received, last, ProgressOutbox(send, interval_s=0.2)


def test_the_outbox_sends_a_handful_of_100000_reports_and_the_last_one_after_the_burst() -> None:
    received, last, outbox = _collecting()
    for n in range(100_000):
        outbox.offer("a", _rec(n))
    assert last.wait(5), f"the last report of the burst never went: {received[-3:]}"
    assert received[0] == ("a", _rec(0))
    assert received[-1] == ("a", _rec(99_999))
    assert outbox.sent == len(received)
    assert len(received) < 100  # one per 0.2 s of the loop, whatever the machine's speed


def test_reports_from_many_threads_each_end_with_their_latest() -> None:
    received: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    done = threading.Event()

    def send(reports: Sequence[tuple[str, bytes]]) -> None:
        with lock:
            received.extend(reports)
            latest = dict(received)
            if all(latest.get(f"j{t}") == _rec(999) for t in range(4)):
                done.set()

    outbox = ProgressOutbox(send, interval_s=0.1)

    def report(thread: int) -> None:
        for n in range(1000):
            outbox.offer(f"j{thread}", _rec(n))

    threads = [threading.Thread(target=report, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done.wait(5), f"not every job's last report arrived: {received[-8:]}"


def test_a_send_that_fails_drops_the_report_and_never_reaches_the_task() -> None:
    def broken(_reports: Sequence[tuple[str, bytes]]) -> None:
        raise BrokenPipeError("the supervisor is gone")

    outbox = ProgressOutbox(broken)
    outbox.offer("a", _rec(1))  # no error
    assert outbox.sent == 0


class _Counting(MemoryBroker):
    """A memory broker that counts the progress calls it gets (and can fail them)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []
        self.failing = False

    async def report_progress(self, queue: str, reports: Sequence[ProgressReport]) -> int:
        self.calls.append((queue, len(reports)))
        if self.failing:
            raise BrokerUnavailable("Redis at redis://x is unreachable")
        return await super().report_progress(queue, reports)


def _record(fraction: float) -> bytes:
    return encode_progress(fraction, "", {}, 0.0)


async def _held_jobs(broker: _Counting, ledger: Ledger, queue: str, *ids: str) -> None:
    broker.enqueue(queue, [NewJob(job_id, b"{}") for job_id in ids])
    for delivery in (await broker.fetch(queue, len(ids), 60_000, "w")).jobs:
        ledger.hold(queue, delivery.id, delivery.token)


async def test_the_writer_sends_one_call_per_queue_with_each_jobs_latest_report() -> None:
    broker, ledger = _Counting(), Ledger()
    await _held_jobs(broker, ledger, "a", "a1", "a2")
    await _held_jobs(broker, ledger, "b", "b1")
    writer = ProgressWriter(broker, ledger)
    writer.add([("a1", _record(0.1)), ("a2", _record(0.2))])
    writer.add([("a1", _record(0.3)), ("b1", _record(0.4)), ("gone", _record(0.5))])
    assert await writer.flush() == 3
    assert sorted(broker.calls) == [("a", 2), ("b", 1)]  # the job no longer held is skipped
    progress = broker.job_progress("a", "a1")
    assert progress is not None
    assert progress.fraction == 0.3
    assert await writer.flush() == 0  # nothing new: no call
    assert len(broker.calls) == 2


async def test_a_failed_write_is_dropped_and_logged_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, ledger = _Counting(), Ledger()
    await _held_jobs(broker, ledger, "a", "a1")
    writer = ProgressWriter(broker, ledger)
    broker.failing = True
    writer.add([("a1", _record(0.1))])
    with caplog.at_level(logging.WARNING, "errands.worker"):
        assert await writer.flush() == 0
    assert "progress of 1 job(s) could not be written" in caplog.text
    assert "unreachable" in caplog.text
    broker.failing = False
    writer.add([("a1", _record(0.2))])
    assert await writer.flush() == 1
    progress = read_progress(broker.read("a", lambda q, _: q.progress["a1"]))
    assert progress is not None
    assert progress.fraction == 0.2


def test_the_supervisors_tick_is_shorter_than_the_interval() -> None:
    assert TICK_S < INTERVAL_S
