"""`WorkerConfig`: how a worker runs (what ``errands worker`` options become)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from errands.worker.queues import QueueSelection

__all__ = ["LogJobs", "PoolKind", "WorkerConfig"]

PoolKind = Literal["process", "solo", "async"]
#: Which job outcomes the worker logs: every one, failures only (retries too), or none.
LogJobs = Literal["all", "failures", "none"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker runs.

    Attributes:
        queues: the queues it serves, strict or weighted.
        concurrency: child processes (process pool) or jobs at once (async pool).
        pool: "process", "solo" or "async".
        prefetch: sync jobs queued per child beyond the running one (None: adaptive).
        grace_period_s: how long running jobs may finish after the first SIGTERM.
        lease_s: a job's lease; renewed every lease/3 while it runs.
        maintenance_every_s: how often to run the bounded maintenance pass.
        limits_every_s: how often hard time limits are checked.
        log_jobs: the job lines logged: "all" (default), "failures" (retries and failures, for
            busy fleets) or "none" (docs/operations.md, "Logs").
    """

    queues: QueueSelection
    concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    pool: PoolKind = "process"
    prefetch: int | None = None
    grace_period_s: float = 30.0
    lease_s: float = 30.0
    maintenance_every_s: float = 5.0
    limits_every_s: float = 0.05
    log_jobs: LogJobs = "all"
