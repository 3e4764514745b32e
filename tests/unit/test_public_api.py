"""The public names of `errands`: adding or removing one is a decision, made here on purpose."""

from __future__ import annotations

import errands
from errands import JobState

PUBLIC = {
    # The app, tasks and results.
    "App",
    "AsyncResult",
    "JobState",
    "Progress",
    "Signature",
    "Task",
    "TaskContext",
    "current_task",
    # Workflows.
    "Chain",
    "ChainResult",
    "Chord",
    "ChordResult",
    "Group",
    "GroupResult",
    "chain",
    "chord",
    "group",
    # Middleware.
    "Execution",
    "Middleware",
    "Outgoing",
    "WorkerInfo",
    # Errors.
    "ArgumentError",
    "BrokerError",
    "BrokerFull",
    "BrokerTooOld",
    "BrokerUnavailable",
    "ChordFailed",
    "ConfigurationError",
    "CorruptJob",
    "ErrandsError",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobStalled",
    "ResultTimeoutError",
    "ScheduleNotFound",
    "Retry",
    "RateLimited",
    "Limiter",
    "SoftTimeLimitExceeded",
    "TaskNotFound",
    "TimeLimitExceeded",
    "WaitInsideTaskError",
    "WorkerLost",
}


def test_errands_exports_exactly_its_public_names() -> None:
    assert set(errands.__all__) == PUBLIC
    assert len(errands.__all__) == len(PUBLIC), "a name is listed twice in errands.__all__"
    missing = [name for name in errands.__all__ if not hasattr(errands, name)]
    assert missing == []


def test_every_public_name_has_a_docstring() -> None:
    undocumented = [name for name in PUBLIC if not (getattr(errands, name).__doc__ or "").strip()]
    assert undocumented == []


def test_job_states_are_the_strings_they_always_were() -> None:
    assert [state.value for state in JobState] == [
        "queued",
        "scheduled",
        "active",
        "succeeded",
        "failed",
        "cancelled",
        "dead",
        "waiting",
        "corrupt",
        "unknown",
    ]
    assert isinstance(JobState.SUCCEEDED, str)
    assert f"{JobState.SUCCEEDED}" == "succeeded"
    assert JobState.parse("from a newer version") is JobState.UNKNOWN
