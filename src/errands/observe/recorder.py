"""`Recorder`: what the supervisor tells of its jobs, for metrics; this one records nothing.

Kept apart from `errands.observe.metrics` so that a worker without ``--metrics-port`` never
imports prometheus_client: `errands.observe.metrics.WorkerMetrics` is the one that counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from errands.broker.types import AckCode, Outcome
    from errands.worker.pool import Assigned
    from errands.worker.protocol import Finished

__all__ = ["Recorder"]


class Recorder:
    """What the supervisor tells of its jobs; this one records nothing (metrics are off).

    The supervisor calls it once per batch, on its own thread; `WorkerMetrics` counts.
    """

    __slots__ = ()

    def started(self, queue: str, assigned: Sequence[Assigned]) -> None:
        """Jobs of `queue` were handed to the pool to run."""

    def finished(self, results: Sequence[Finished]) -> None:
        """Runs ended (a child's outcomes, or the supervisor's for a child it lost)."""

    def acked(self, acks: Sequence[Outcome], codes: Sequence[AckCode]) -> None:
        """Redis settled these outcomes as `codes` say."""

    def died(self, queue: str, died: Sequence[tuple[str, bytes]]) -> None:
        """Jobs of `queue` went to the dead set, by a call of this worker (id, outcome)."""

    def gave_back(self, job_ids: Sequence[str]) -> None:
        """The pool will not run these jobs."""
