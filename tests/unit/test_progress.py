"""`ctx.set_progress`: what a task may report, one clear error for what it may not, the record."""

from __future__ import annotations

import datetime as dt
import math

import msgspec
import pytest

from errands import ArgumentError, Progress, TaskContext
from errands.progress import MAX_BYTES, MAX_MESSAGE, encode_progress, read_progress

NOW_S = 1_767_225_600.5  # 2026-01-01 00:00:00.5 UTC


class Recorder:
    """A sink that keeps every record offered to it."""

    def __init__(self) -> None:
        self.offered: list[tuple[str, bytes]] = []

    def offer(self, job_id: str, record: bytes) -> None:
        self.offered.append((job_id, record))


def _context(sink: Recorder | None = None) -> TaskContext:
    return TaskContext(id="j1", task="t", attempt=1, max_retries=0, queue="q", _progress=sink)


def test_a_report_reads_back_as_a_frozen_record_with_an_aware_time() -> None:
    record = encode_progress(0.4, "step 2 of 5", {"rows": 1200, "stages": ["copy"]}, NOW_S)
    progress = read_progress(record)
    assert progress == Progress(
        0.4,
        "step 2 of 5",
        {"rows": 1200, "stages": ["copy"]},
        dt.datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=dt.UTC),
    )
    assert progress is not None
    with pytest.raises(AttributeError):
        progress.fraction = 0.5  # type: ignore[misc]
    assert msgspec.json.decode(record) == {
        "p": 0.4,
        "m": "step 2 of 5",
        "d": {"rows": 1200, "stages": ["copy"]},
        "t": 1_767_225_600_500,
    }


@pytest.mark.parametrize("fraction", [0, 1, 0.0, 1.0, 0.25, None])
def test_a_fraction_from_0_to_1_or_none_is_taken(fraction: float | None) -> None:
    progress = read_progress(encode_progress(fraction, "", {}, NOW_S))
    assert progress is not None
    assert progress.fraction == (None if fraction is None else float(fraction))


@pytest.mark.parametrize(
    ("fraction", "says"),
    [
        (1.5, "from 0 to 1"),
        (-0.1, "from 0 to 1"),
        (math.nan, "from 0 to 1"),
        (math.inf, "from 0 to 1"),
        (True, "a number from 0 to 1"),
        ("40%", "a number from 0 to 1"),
    ],
)
def test_a_fraction_outside_0_to_1_is_one_clear_error(fraction: object, says: str) -> None:
    with pytest.raises(ArgumentError, match=f"set_progress: fraction must be {says}"):
        _context().set_progress(fraction)  # type: ignore[arg-type]


def test_a_message_that_is_not_a_str_is_refused_and_a_long_one_is_cut() -> None:
    with pytest.raises(ArgumentError, match=r"message must be a str, not int: pass str"):
        _context().set_progress(0.5, 42)  # type: ignore[arg-type]
    progress = read_progress(encode_progress(0.5, "x" * (MAX_MESSAGE + 100), {}, NOW_S))
    assert progress is not None
    assert len(progress.message) == MAX_MESSAGE
    assert progress.message.endswith("...")
    assert read_progress(encode_progress(0.5, "y" * MAX_MESSAGE, {}, NOW_S)) is not None


def test_data_that_is_not_json_names_the_bad_value() -> None:
    ctx = _context()
    with pytest.raises(ArgumentError, match=r'data\["when"\] is a datetime'):
        ctx.set_progress(0.5, "copying", when=dt.datetime.now(dt.UTC))
    with pytest.raises(ArgumentError, match=r'data\["files"\]\[1\] is a set'):
        ctx.set_progress(0.5, "copying", files=["a", {"b"}])


def test_a_report_over_the_bound_is_refused_saying_what_to_do_instead() -> None:
    with pytest.raises(ArgumentError) as refused:
        _context().set_progress(0.5, "big", blob="x" * MAX_BYTES)
    message = str(refused.value)
    assert f"over the bound of {MAX_BYTES:,}" in message
    assert "put large data in the job's result" in message
    # Just under the bound is fine.
    room = MAX_BYTES - len(encode_progress(0.5, "", {"blob": ""}, NOW_S))
    assert len(encode_progress(0.5, "", {"blob": "x" * room}, NOW_S)) == MAX_BYTES


def test_set_progress_hands_the_checked_record_to_the_workers_sink() -> None:
    sink = Recorder()
    ctx = _context(sink)
    ctx.set_progress(0.1)
    ctx.set_progress(message="counting", seen=3)
    with pytest.raises(ArgumentError):
        ctx.set_progress(2.0)
    assert [job for job, _ in sink.offered] == ["j1", "j1"]  # the bad one never left
    first, second = (read_progress(record) for _, record in sink.offered)
    assert first is not None
    assert (first.fraction, first.message, first.data) == (0.1, "", {})
    assert second is not None
    assert (second.fraction, second.message, second.data) == (None, "counting", {"seen": 3})


def test_outside_a_worker_a_report_is_checked_then_dropped() -> None:
    ctx = _context()
    ctx.set_progress(0.5, "fine")  # no sink: nothing happens
    with pytest.raises(ArgumentError):
        ctx.set_progress(0.5, "bad", value=object())


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[1, 2]", b'{"p": "half"}', b'{"t": 1e30}', b'{"d": [1]}'],
)
def test_a_record_that_does_not_read_is_no_progress_not_an_error(raw: bytes) -> None:
    assert read_progress(raw) is None


def test_a_stored_fraction_out_of_range_reads_as_none() -> None:
    progress = read_progress(b'{"p": 7, "m": "hand-written", "d": {}, "t": 0}')
    assert progress is not None
    assert progress.fraction is None
    assert progress.message == "hand-written"
