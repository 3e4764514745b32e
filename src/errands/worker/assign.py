"""`Assigner`: what the supervisor reads of a job before a pool runs it, without its arguments.

Only the envelope is decoded (task name, per-call time limit): the arguments stay raw bytes for
the process that runs the job. What a task needs here (its hard limit, sync or async) is looked
up once per task name.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from errands.message import decode_envelope
from errands.worker.pool import Assigned
from errands.worker.protocol import Job

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["Assigner"]


class Assigner:
    """Turns jobs into `Assigned` ones for a pool.

    Args:
        app: the app whose tasks the jobs are of.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._facts: dict[str, tuple[float, bool]] = {}  # task name -> (hard limit, is async)

    def assign(self, job: Job) -> Assigned:
        """`job` with its task, hard limit and kind; a payload that does not decode runs as is.

        The process that runs it finds the payload broken and fails the job.
        """
        try:
            envelope = decode_envelope(job.payload)
        except msgspec.DecodeError:
            return Assigned(job, "", self.app.time_limit, is_async=False)
        known = self._facts.get(envelope.task)
        if known is None:
            task = self.app.tasks.get(envelope.task)
            known = self._facts[envelope.task] = (
                task.options.time_limit if task else self.app.time_limit,
                task is not None and asyncio.iscoroutinefunction(task.fn),
            )
        return Assigned(job, envelope.task, envelope.time_limit or known[0], known[1])
