"""The job lines and ``ctx.log`` records carry stable fields, in JSON and on the console."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from errands import App
from errands.broker.memory import MemoryBroker
from errands.context import TaskContext
from errands.observe.logging import (
    JOBS_LOGGER,
    ConsoleFormatter,
    JsonFormatter,
    child_arguments,
    configure_child,
    configure_logging,
)
from errands.retry import RetryPolicy
from errands.task import TaskOptions
from errands.worker.execution import Executor
from errands.worker.outcome_log import OutcomeLog, ReapedLog, level_for, log_as_worker
from errands.worker.protocol import Finished


class Keep(logging.Handler):
    """Keeps every record it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def jobs() -> Iterator[tuple[OutcomeLog, Keep]]:
    """An outcome log whose records are kept, on a logger of the test's own."""
    logger = logging.getLogger("errands.test.jobs")
    keep = Keep()
    logger.handlers[:] = [keep]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield OutcomeLog(logger), keep
    logger.handlers.clear()


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger (and the job logger's level) back as they were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    jobs_level = logging.getLogger(JOBS_LOGGER).level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger(JOBS_LOGGER).setLevel(jobs_level)


def _options(max_retries: int) -> TaskOptions:
    retry = RetryPolicy(max_retries=max_retries)
    return TaskOptions("billing.charge", "payments", 0, retry, soft_time_limit=5, time_limit=10)


def _failure(attempt: int, max_retries: int) -> Finished:
    try:
        raise ValueError("card declined")
    except ValueError as error:
        return Executor.failed("job-1", attempt, _options(max_retries), error, retry=True)


def _json(record: logging.LogRecord, worker: str | None = "host:1:abc") -> dict[str, object]:
    parsed: dict[str, object] = json.loads(JsonFormatter(worker).format(record))
    return parsed


def test_a_success_is_one_info_line_with_the_job_fields(jobs: tuple[OutcomeLog, Keep]) -> None:
    outcomes, keep = jobs
    outcomes.ran("billing.charge", "payments", 1, Executor.succeeded("job-1", 1, 42), 0.0123)
    (record,) = keep.records
    entry = _json(record)
    assert set(entry) == {
        "time", "level", "logger", "message", "worker", "pid",
        "job_id", "task", "queue", "attempt", "outcome", "duration_s",
    }  # fmt: skip
    assert entry["level"] == "info"
    assert entry["message"] == "billing.charge succeeded in 0.0123s"
    assert (entry["job_id"], entry["task"], entry["queue"]) == (
        "job-1",
        "billing.charge",
        "payments",
    )
    assert (entry["attempt"], entry["outcome"], entry["duration_s"]) == (1, "succeeded", 0.0123)
    assert entry["worker"] == "host:1:abc"
    assert str(entry["time"]).endswith("Z")


def test_a_retry_is_a_warning_with_its_delay_and_error_without_traceback(
    jobs: tuple[OutcomeLog, Keep],
) -> None:
    outcomes, keep = jobs
    finished = _failure(attempt=1, max_retries=3)
    assert finished.kind == "retrying"
    outcomes.ran("billing.charge", "payments", 1, finished, 0.5)
    entry = _json(keep.records[0])
    assert entry["level"] == "warning"
    assert entry["outcome"] == "retrying"
    assert entry["retry_in_s"] == finished.retry_delay_ms / 1000
    assert (entry["error_type"], entry["error"]) == ("ValueError", "card declined")
    assert "traceback" not in entry
    assert "retrying in" in str(entry["message"])


def test_a_job_that_failed_for_good_is_an_error_with_its_traceback(
    jobs: tuple[OutcomeLog, Keep],
) -> None:
    outcomes, keep = jobs
    finished = _failure(attempt=4, max_retries=3)
    assert finished.kind == "failed"
    outcomes.ran("billing.charge", "payments", 4, finished, 0.5)
    record = keep.records[0]
    entry = _json(record)
    assert entry["level"] == "error"
    assert entry["outcome"] == "failed"
    assert "retry_in_s" not in entry
    assert str(entry["traceback"]).startswith("Traceback (most recent call last)")
    assert 'raise ValueError("card declined")' in str(entry["traceback"])
    console = ConsoleFormatter().format(record)
    head, _, below = console.partition("\n")
    assert head.endswith(
        "billing.charge failed for good in 0.5000s on attempt 4: ValueError: card declined "
        "[task=billing.charge job=job-1 queue=payments attempt=4]"
    )
    assert below.startswith("Traceback (most recent call last)")
    assert below.rstrip().endswith("ValueError: card declined")


def test_rate_limited_and_deferred_runs_are_warnings_with_their_delay(
    jobs: tuple[OutcomeLog, Keep],
) -> None:
    outcomes, keep = jobs
    limited = Finished("job-2", "limited", b'{"state":"failed"}', 5000)
    deferred = Finished("job-3", "deferred", b'{"state":"deferred"}', 1500)
    outcomes.ran("api.call", "default", 1, limited, 0.01)
    outcomes.ran("new.task", "default", 1, deferred, None)
    first, second = (_json(record) for record in keep.records)
    assert (first["level"], first["outcome"], first["retry_in_s"]) == ("warning", "limited", 5.0)
    assert (second["level"], second["outcome"], second["retry_in_s"]) == (
        "warning",
        "deferred",
        1.5,
    )
    assert "duration_s" not in second  # it never ran


def test_a_disabled_level_builds_no_record(jobs: tuple[OutcomeLog, Keep]) -> None:
    outcomes, keep = jobs
    outcomes.logger.setLevel(level_for("failures"))
    outcomes.ran("a", "q", 1, Executor.succeeded("job-1", 1, 1), 0.001)
    outcomes.ran("a", "q", 4, _failure(4, 3), 0.001)
    assert [r.levelno for r in keep.records] == [logging.ERROR]
    outcomes.logger.setLevel(level_for("none"))
    outcomes.ran("a", "q", 4, _failure(4, 3), 0.001)
    assert len(keep.records) == 1


def test_ctx_log_records_carry_the_job_fields_in_both_formats() -> None:
    context = TaskContext(id="job-9", task="mail.send", attempt=2, max_retries=3, queue="mail")
    keep = Keep()
    logger = logging.getLogger("errands.task.mail.send")
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        context.log.info("sending to %s", "a@b.c")
    finally:
        logger.removeHandler(keep)
    (record,) = keep.records
    entry = _json(record, worker=None)
    assert entry["message"] == "sending to a@b.c"
    assert (entry["job_id"], entry["task"], entry["queue"], entry["attempt"]) == (
        "job-9", "mail.send", "mail", 2,
    )  # fmt: skip
    assert "worker" not in entry
    line = ConsoleFormatter().format(record)
    expected = "sending to a@b.c [task=mail.send job=job-9 queue=mail attempt=2]"
    assert line.endswith(f"errands.task.mail.send: {expected}")


def test_a_record_logged_with_an_exception_has_its_type_message_and_traceback() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, "", 0, "broke", (), exc_info=sys.exc_info()
        )
    entry = _json(record)
    assert (entry["error_type"], entry["error"]) == ("KeyError", "'missing'")
    assert "Traceback (most recent call last)" in str(entry["traceback"])


@pytest.mark.usefixtures("root_logging")
def test_children_get_the_supervisors_level_format_job_lines_and_worker() -> None:
    configure_logging("warning", "json")
    log_as_worker("host:7:abc", "failures")
    arguments = child_arguments()
    assert arguments == ["warning", "json", str(logging.WARNING), "host:7:abc"]
    configure_logging("debug", "console")
    logging.getLogger(JOBS_LOGGER).setLevel(logging.NOTSET)
    configure_child(arguments)
    root = logging.getLogger()
    assert root.level == logging.WARNING
    formatter = root.handlers[0].formatter
    assert isinstance(formatter, JsonFormatter)
    assert formatter.worker == "host:7:abc"
    assert logging.getLogger(JOBS_LOGGER).level == logging.WARNING


@pytest.mark.usefixtures("root_logging")
def test_a_console_supervisor_with_every_job_line_passes_that_on() -> None:
    configure_logging("info", "console")
    log_as_worker("host:7:abc", "all")
    assert child_arguments() == ["info", "console", "0", "-"]
    configure_child(["info", "console", "0", "-"])
    assert isinstance(logging.getLogger().handlers[0].formatter, ConsoleFormatter)
    assert logging.getLogger(JOBS_LOGGER).level == logging.NOTSET


def test_a_job_redis_sent_to_the_dead_set_gets_its_line_with_the_task_read_back() -> None:
    app = App(broker=MemoryBroker())

    @app.task(name="reports.build")
    def build() -> None: ...

    job = build.delay()
    stalled = b'{"state":"failed","error":{"type":"errands.errors.JobStalled","message":"stalled"}}'
    own = b'{"state":"failed","error":{"type":"ValueError","message":"logged where it ran"}}'
    keep = Keep()
    logger = logging.getLogger(JOBS_LOGGER)
    logger.addHandler(keep)

    async def died() -> None:
        reaped = ReapedLog(app)
        reaped.note("default", [(job.id, stalled), ("other", own)])
        await reaped.written()

    try:
        asyncio.run(died())
    finally:
        logger.removeHandler(keep)
    (record,) = keep.records  # the job its child logged already gets no second line
    entry = _json(record)
    assert entry["level"] == "error"
    assert entry["message"] == "reports.build is dead: errands.errors.JobStalled: stalled"
    assert (entry["job_id"], entry["task"], entry["queue"], entry["outcome"]) == (
        job.id, "reports.build", "default", "dead",
    )  # fmt: skip


def test_the_console_shows_a_record_logged_with_an_exception_with_its_traceback_below() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = logging.getLogger("errands.worker").makeRecord(
            "errands.worker", logging.ERROR, "", 0, "stopped: %s", ("boom",), sys.exc_info()
        )
    first, *below = ConsoleFormatter().format(record).splitlines()
    assert first.endswith(" ERROR   errands.worker: stopped: boom")
    assert below[0] == "Traceback (most recent call last):"
    assert below[-1] == "KeyError: 'missing'"
