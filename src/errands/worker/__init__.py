"""The worker: a supervisor doing all Redis I/O, and a pool that runs user code."""

from errands.worker.queues import QueueSelection, parse_queues
from errands.worker.supervisor import Supervisor, WorkerConfig

__all__ = ["QueueSelection", "Supervisor", "WorkerConfig", "parse_queues"]
