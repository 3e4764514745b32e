"""Deaths no run saw: which dead jobs the supervisor alone can tell observers about.

A job whose task raised for good ends in the process that ran it, where `after_execute` sees it
(state "failed"). Some jobs die with no run to see it: the supervisor killed the child at the hard
time limit, the child died, the lease expired too often, the record could not be read, or the
task is unknown to the worker; `on_dead` in the supervisor is the only hook told of those. The
error reporters and tracing use this to report each death once, from one process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from errands.result import ErrorInfo

if TYPE_CHECKING:
    from errands.app import App
    from errands.broker.views import JobDetail

__all__ = ["UNSEEN_ERRORS", "read_dead_job", "unseen_by_a_run"]

log = logging.getLogger("errands.observe")

#: The error types of deaths no `after_execute` saw (the type names `ErrorInfo.type` holds).
UNSEEN_ERRORS = frozenset(
    {
        "errands.errors.TimeLimitExceeded",
        "errands.errors.WorkerLost",
        "errands.errors.JobStalled",
        "errands.errors.CorruptJob",
        "errands.errors.TaskNotFound",
        "msgspec.DecodeError",
    }
)


def unseen_by_a_run(error: ErrorInfo | None) -> bool:
    """True when the death `error` says was decided where no `after_execute` ran."""
    return error is None or error.type in UNSEEN_ERRORS


def read_dead_job(app: App | None, queue: str, job_id: str) -> JobDetail | None:
    """The dead job's record (task, attempts, headers), or None when it cannot be read.

    One Redis read, made by the supervisor in its hook: deaths no run saw are rare (kills, lost
    children), and the read comes right after the call that sent the job there.
    """
    if app is None:
        return None
    try:
        return app.inspector.job(queue, job_id)
    except Exception:  # a report without the record beats no report
        log.warning("could not read dead job %s of queue %s", job_id, queue, exc_info=True)
        return None
