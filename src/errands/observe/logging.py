"""Log set-up for the worker and the CLI: readable console lines, or one JSON object per line.

Records from a task's ``ctx.log`` carry ``errands_job_id``, ``errands_task`` and
``errands_attempt``; both formats show them.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal

import msgspec

__all__ = ["JsonFormatter", "configure_logging"]

_CONTEXT = ("errands_job_id", "errands_task", "errands_attempt")
_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, job context, error."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a JSON line."""
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _CONTEXT:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name.removeprefix("errands_")] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        job = record.__dict__.get("errands_job_id")
        if job is not None:
            task = record.__dict__.get("errands_task")
            attempt = record.__dict__.get("errands_attempt")
            text = f"{text} [{task} {job} attempt {attempt}]"
        return text


def configure_logging(level: str = "info", fmt: Literal["console", "json"] = "console") -> None:
    """Send logs to stderr in the chosen format, at the chosen level."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _ConsoleFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
