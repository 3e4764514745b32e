"""`Broker`: everything errands needs from a broker, as the protocols it is made of.

| protocol | what it does | module |
|---|---|---|
| `Transport` | enqueue, fetch, ack, heartbeat, release, wait for work | `broker/transport.py` |
| `ResultStore` | a job's state and outcome, and waiting for it | `broker/stores.py` |
| `WorkflowStore` | chords | `broker/stores.py` |
| `Admin` | redrive, purge, purge ready, pause | `broker/operator.py` |
| `Inspector` | the operator's read model (``broker.inspector``) | `broker/operator.py` |
| `ScheduleStore` | schedules and the scheduler's lease (``broker.schedules``) | `broker/beat.py` |

`errands.testing.MemoryBroker` and `errands.broker.redis.RedisBroker` implement it all, and
one conformance suite (`errands.testing.check_broker`) holds them to it. A part of errands
that needs less asks for less: the worker for a `Transport` and a `WorkflowStore`, an
`AsyncResult` for a `ResultStore`.
"""

from __future__ import annotations

from typing import Protocol

from errands.broker.beat import ScheduleStore
from errands.broker.operator import Admin, Inspector
from errands.broker.settings import BrokerSettings
from errands.broker.stores import ResultStore, WorkflowStore
from errands.broker.transport import Transport

__all__ = [
    "Admin",
    "Broker",
    "BrokerSettings",
    "Inspector",
    "ResultStore",
    "ScheduleStore",
    "Transport",
    "WorkflowStore",
]


class Broker(Transport, ResultStore, WorkflowStore, Admin, Protocol):
    """What errands needs from a broker: every protocol above, and its inspector."""

    @property
    def inspector(self) -> Inspector:
        """The operator's read model of this broker."""
        ...

    @property
    def schedules(self) -> ScheduleStore:
        """The schedules and the scheduler's leader lease."""
        ...
