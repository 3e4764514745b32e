"""Log set-up for the worker and the CLI: readable console lines, or one JSON object per line.

A record about a job carries its fields as attributes named ``errands_<field>`` (`JOB_FIELDS`):
the job lines of `errands.worker.outcome_log` and everything a task logs through ``ctx.log``.
The JSON format writes each one under its bare name (`JsonFormatter`); the console format
appends them in brackets, and a failure's traceback on the lines below. The field names are
documented in docs/operations.md ("Logs") and stable: dashboards and alerts query them.

A worker's children log like their supervisor: `child_arguments` gives them its level, format,
job-line level (``--log-jobs``) and worker id, and `configure_child` applies them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

__all__ = [
    "JOBS_LOGGER",
    "JOB_FIELDS",
    "ConsoleFormatter",
    "JsonFormatter",
    "LogFormat",
    "child_arguments",
    "configure_child",
    "configure_logging",
    "name_worker",
]

LogFormat = Literal["console", "json"]

#: The logger of the per-job outcome lines; ``--log-jobs`` sets its level.
JOBS_LOGGER = "errands.jobs"

#: The job fields a record may carry, as ``errands_<name>`` attributes, in the order shown.
JOB_FIELDS = (
    "job_id",
    "task",
    "queue",
    "attempt",
    "outcome",
    "duration_s",
    "retry_in_s",
    "error_type",
    "error",
    "traceback",
)
_ATTRIBUTES = tuple((f"errands_{name}", name) for name in JOB_FIELDS)
_encoder = msgspec.json.Encoder()


class _SecondCache:
    """A record's time as text, formatted once per second (a busy worker logs many in one)."""

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self._fmt = fmt
        self._convert = convert
        self._second = -1
        self._text = ""

    def __call__(self, second: int) -> str:
        if second != self._second:
            self._text = time.strftime(self._fmt, self._convert(second))
            self._second = second
        return self._text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, its field names stable.

    ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``worker`` (once the worker has
    a name), ``pid``, then the job fields the record carries (`JOB_FIELDS`); a record logged with
    an exception has ``error_type``, ``error`` and ``traceback`` too.

    Args:
        worker: the worker id to put on every record (see `name_worker`).
    """

    def __init__(self, worker: str | None = None) -> None:
        super().__init__()
        self.worker = worker
        self._utc = _SecondCache("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a JSON line."""
        created = record.created
        second = int(created)
        entry: dict[str, object] = {
            "time": f"{self._utc(second)}.{int((created - second) * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        entry["pid"] = record.process
        fields = record.__dict__
        for attribute, name in _ATTRIBUTES:
            value = fields.get(attribute)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry.setdefault("error_type", _type_name(error))
            entry.setdefault("error", str(error))
            entry.setdefault("traceback", self.formatException(record.exc_info))
        elif record.exc_text:
            entry.setdefault("traceback", record.exc_text)
        return _encoder.encode(entry).decode()


def _type_name(error: BaseException) -> str:
    kind = type(error)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 INFO    errands.jobs: add succeeded in 0.002s [task=add job=... attempt=1]``.

    A record about a job gets its task, id, queue and attempt in brackets; one that carries a
    traceback (a job that failed for good) shows it on the lines below, as an exception would.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self._local = _SecondCache("%H:%M:%S", time.localtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        """The record's local time, ``12:00:01``."""
        return self._local(int(record.created))

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a line (and its traceback below it)."""
        # The format above, written out: a job line is logged per job, and this is its cost.
        record.message = message = record.getMessage()
        first, newline, more = message.partition("\n")
        text = f"{self._local(int(record.created))} {record.levelname:<7} {record.name}: {first}"
        fields = record.__dict__
        job = fields.get("errands_job_id")
        if job is not None:
            text += f" [task={fields.get('errands_task')} job={job}"
            queue = fields.get("errands_queue")
            if queue is not None:
                text += f" queue={queue}"
            attempt = fields.get("errands_attempt")
            if attempt is not None:
                text += f" attempt={attempt}"
            text += "]"
        text += newline + more
        trace = fields.get("errands_traceback")
        if trace:
            text += "\n" + trace.rstrip()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


def _formatter(fmt: LogFormat, worker: str | None = None) -> logging.Formatter:
    return JsonFormatter(worker) if fmt == "json" else ConsoleFormatter()


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "console",
    *,
    jobs: str | None = None,
    worker: str | None = None,
) -> None:
    """Send logs to stderr in the chosen format, at the chosen level.

    Args:
        level: the root level (``debug``, ``info``, ``warning``...).
        fmt: ``console`` (readable lines) or ``json`` (one object per line).
        jobs: the level of the job lines (`JOBS_LOGGER`), when it differs from the root's.
        worker: the worker id JSON lines carry.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(fmt, worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if jobs is not None:
        logging.getLogger(JOBS_LOGGER).setLevel(int(jobs) if jobs.isdigit() else jobs.upper())


def name_worker(worker_id: str) -> None:
    """Put `worker_id` on every JSON line this process logs from now on."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.worker = worker_id


def child_arguments() -> list[str]:
    """This process's logging, as arguments for a worker child (`configure_child` reads them).

    The level, the format, the level of the job lines and the worker id (or ``-``).
    """
    root = logging.getLogger()
    json_handlers = [h.formatter for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
    fmt = "json" if json_handlers else "console"
    worker = json_handlers[0].worker if json_handlers and json_handlers[0].worker else "-"
    jobs = logging.getLogger(JOBS_LOGGER).level  # NOTSET (0): as the root
    return [logging.getLevelName(root.getEffectiveLevel()).lower(), fmt, str(jobs), worker]


def configure_child(arguments: Sequence[str]) -> None:
    """Log as the supervisor does, from what `child_arguments` gave (older forms accepted)."""
    if len(arguments) < 2:
        return
    fmt: LogFormat = "json" if arguments[1] == "json" else "console"
    jobs = arguments[2] if len(arguments) > 2 and arguments[2] != "0" else None
    worker = arguments[3] if len(arguments) > 3 and arguments[3] != "-" else None
    configure_logging(arguments[0], fmt, jobs=jobs, worker=worker)
