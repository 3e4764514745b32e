"""errands: a distributed task queue for Python whose defaults are the lessons learned the hard way.

The public names, and nothing else: see the README and docs/ for how to use them.
"""

from errands.app import App
from errands.context import TaskContext, current_task
from errands.errors import (
    ArgumentError,
    BrokerTooOld,
    BrokerUnavailable,
    ConfigurationError,
    ErrandsError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobStalled,
    ResultTimeoutError,
    Retry,
    SoftTimeLimitExceeded,
    TaskNotFound,
    TimeLimitExceeded,
    WaitInsideTaskError,
    WorkerLost,
)
from errands.result import AsyncResult
from errands.task import Signature, Task

__all__ = [
    "App",
    "ArgumentError",
    "AsyncResult",
    "BrokerTooOld",
    "BrokerUnavailable",
    "ConfigurationError",
    "ErrandsError",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobStalled",
    "ResultTimeoutError",
    "Retry",
    "Signature",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskContext",
    "TaskNotFound",
    "TimeLimitExceeded",
    "WaitInsideTaskError",
    "WorkerLost",
    "current_task",
]

__version__ = "0.1.0"
