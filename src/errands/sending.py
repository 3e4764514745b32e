"""`Sender`: the one way out. Every job an app sends passes its middleware, then its broker.

`delay`, `apply_async`, `send_task`, `enqueue_many`, groups, chains, chords and a chain's next
step (sent by the worker) all end here (`App.send`, `App.asend`, `App.send_batches`,
`App.acontinue`, `App.outgoing`). With no middleware that looks at sends, a job goes straight
to the broker: the hot path pays nothing for the seam.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import msgspec

from errands.broker.types import Enqueued, NewJob
from errands.errors import BrokerError, ConfigurationError
from errands.message import JobRecord, check_json, decode_record, encode_record
from errands.middleware import Outgoing

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["Sender"]


class Sender:
    """Sends the jobs of one app.

    Args:
        app: the app (its middleware, broker and payload limit).
    """

    def __init__(self, app: App) -> None:
        self.app = app

    # Middleware ---------------------------------------------------------------------------

    def _show(self, queue: str, jobs: Sequence[NewJob]) -> tuple[list[NewJob], list[Outgoing]]:
        """Run `before_enqueue` on each job; rebuild the ones it changed."""
        middleware = self.app.middleware
        sent: list[NewJob] = []
        shown: list[Outgoing] = []
        for job in jobs:
            record = decode_record(job.payload)
            before = Outgoing(
                id=job.id,
                task=record.task,
                queue=queue,
                args=record.args,
                kwargs=record.kwargs,
                priority=job.priority,
                delay_s=job.delay_ms / 1000,
                idempotency_key=job.idempotency_key,
                headers=record.headers or {},
            )
            after = middleware.before_enqueue(before)
            sent.append(job if after == before else self._rebuilt(job, record, before, after))
            shown.append(after)
        return sent, shown

    def _rebuilt(self, job: NewJob, record: JobRecord, before: Outgoing, after: Outgoing) -> NewJob:
        """`job` as middleware changed it: its priority, delay, idempotency key, headers."""
        same = ("id", "task", "queue", "args", "kwargs")
        if any(getattr(before, name) != getattr(after, name) for name in same):
            raise ConfigurationError(
                "before_enqueue may change a job's priority, delay_s, idempotency_key and "
                "headers, not its id, task, queue or arguments: send another job instead"
            )
        if not (isinstance(after.priority, int) and 0 <= after.priority <= 9):
            raise ConfigurationError(f"priority must be an int from 0 to 9, not {after.priority}")
        if not 0 <= after.delay_s < math.inf:
            raise ConfigurationError(
                f"delay_s must be a number of seconds >= 0, not {after.delay_s}"
            )
        check_json(after.headers, "headers")
        record = msgspec.structs.replace(
            record, priority=after.priority, headers=dict(after.headers) or None
        )
        return msgspec.structs.replace(
            job,
            payload=encode_record(record, self.app.max_payload_bytes),
            priority=after.priority,
            delay_ms=int(after.delay_s * 1000),
            idempotency_key=after.idempotency_key,
        )

    def _after(self, shown: Sequence[Outgoing], answers: Sequence[Enqueued]) -> None:
        for outgoing, answer in zip(shown, answers, strict=True):
            self.app.middleware.after_enqueue(outgoing, answer.created)

    # The ways out -------------------------------------------------------------------------

    def send(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Send `jobs` to `queue` (see `Broker.enqueue`)."""
        if not self.app.middleware.sending:
            return self.app.broker.enqueue(queue, jobs)
        sent, shown = self._show(queue, jobs)
        answers = self.app.broker.enqueue(queue, sent)
        self._after(shown, answers)
        return answers

    async def asend(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Async twin of `send`."""
        if not self.app.middleware.sending:
            return await self.app.broker.aenqueue(queue, jobs)
        sent, shown = self._show(queue, jobs)
        answers = await self.app.broker.aenqueue(queue, sent)
        self._after(shown, answers)
        return answers

    async def acontinue(self, queue: str, jobs: Sequence[NewJob]) -> list[Enqueued]:
        """Send the next steps of finished jobs (see `Broker.acontinue`)."""
        if not self.app.middleware.sending:
            return await self.app.broker.acontinue(queue, jobs)
        sent, shown = self._show(queue, jobs)
        answers = await self.app.broker.acontinue(queue, sent)
        self._after(shown, answers)
        return answers

    def send_batches(
        self, batches: Iterable[tuple[str, Sequence[NewJob]]]
    ) -> list[list[Enqueued] | BrokerError]:
        """Send batches (queue, jobs), streamed where the broker can (`enqueue_batches`)."""
        if not self.app.middleware.sending:
            return self.app.broker.enqueue_batches(batches)
        shown: list[list[Outgoing]] = []

        def shown_first() -> Iterator[tuple[str, Sequence[NewJob]]]:
            for queue, jobs in batches:
                sent, outgoing = self._show(queue, jobs)
                shown.append(outgoing)
                yield queue, sent

        answers = self.app.broker.enqueue_batches(shown_first())
        for outgoing, answer in zip(shown, answers, strict=True):
            if not isinstance(answer, BrokerError):
                self._after(outgoing, answer)
        return answers

    def outgoing(self, queue: str, job: NewJob) -> NewJob:
        """`job` as `before_enqueue` leaves it, for a job the broker enqueues later itself."""
        if not self.app.middleware.sending:
            return job
        [sent], _ = self._show(queue, [job])
        return sent
