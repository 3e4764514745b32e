"""errands: a distributed task queue for Python whose defaults are the lessons learned the hard way.

The public names, and nothing else: see the README and docs/ for how to use them.
"""

from errands.app import App
from errands.context import TaskContext, current_task
from errands.errors import (
    ArgumentError,
    BrokerError,
    BrokerFull,
    BrokerTooOld,
    BrokerUnavailable,
    ChordFailed,
    ConfigurationError,
    CorruptJob,
    ErrandsError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobStalled,
    RateLimited,
    ResultTimeoutError,
    Retry,
    ScheduleNotFound,
    SoftTimeLimitExceeded,
    TaskNotFound,
    TimeLimitExceeded,
    WaitInsideTaskError,
    WorkerLost,
)
from errands.limits import Limiter
from errands.middleware import Execution, Middleware, Outgoing, WorkerInfo
from errands.progress import Progress
from errands.result import AsyncResult
from errands.states import JobState
from errands.task import Signature, Task
from errands.workflow import (
    Chain,
    ChainResult,
    Chord,
    ChordResult,
    Group,
    GroupResult,
    chain,
    chord,
    group,
)

__all__ = [
    "App",
    "ArgumentError",
    "AsyncResult",
    "BrokerError",
    "BrokerFull",
    "BrokerTooOld",
    "BrokerUnavailable",
    "Chain",
    "ChainResult",
    "Chord",
    "ChordFailed",
    "ChordResult",
    "ConfigurationError",
    "CorruptJob",
    "ErrandsError",
    "Execution",
    "Group",
    "GroupResult",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobStalled",
    "JobState",
    "Limiter",
    "Middleware",
    "Outgoing",
    "Progress",
    "RateLimited",
    "ResultTimeoutError",
    "Retry",
    "ScheduleNotFound",
    "Signature",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskContext",
    "TaskNotFound",
    "TimeLimitExceeded",
    "WaitInsideTaskError",
    "WorkerInfo",
    "WorkerLost",
    "chain",
    "chord",
    "current_task",
    "group",
]

__version__ = "0.1.0"
