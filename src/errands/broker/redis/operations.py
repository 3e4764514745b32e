"""`RedisOperations`: the Redis broker's operator changes and chord records, beside its core.

Cancel, redrive, purge (dead or waiting jobs), pause, and the chord records a producer writes:
each one Redis Function call of `calls.py`, run by the broker's own `run` / `arun`. A mixin of
`RedisBroker`, so the broker module keeps to the calls on the hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

from errands.broker.reading import check_limit
from errands.broker.redis import calls
from errands.broker.redis.series import sample_call
from errands.broker.types import CancelCode, NewJob

if TYPE_CHECKING:
    from errands.broker.redis.keys import QueueKeys
    from errands.broker.series import Sampled
    from errands.broker.settings import BrokerSettings

__all__ = ["RedisOperations"]

T = TypeVar("T")


class RedisOperations:
    """Operator changes (`errands.broker.operator.Admin`) and chord records on Redis."""

    settings: BrokerSettings

    if TYPE_CHECKING:

        def keys(self, queue: str) -> QueueKeys:
            """Given by `RedisBroker`."""

        def run(self, call: calls.Call[T]) -> T:
            """Given by `RedisBroker`."""

        async def arun(self, call: calls.Call[T]) -> T:
            """Given by `RedisBroker`."""

        def deliver_chord_failures(self, queue: str) -> int:
            """Given by `RedisBroker`."""

        async def adeliver_chord_failures(self, queue: str) -> int:
            """Given by `RedisBroker`."""

        def _register(self, queue: str) -> None:
            """Given by `RedisBroker`."""

        async def _aregister(self, queue: str) -> None:
            """Given by `RedisBroker`."""

    def cancel(self, queue: str, job_id: str) -> CancelCode:
        """Cancel one job; see `Broker.cancel`."""
        return self.run(calls.cancel(self.keys(queue), job_id, self.settings.events_maxlen))

    async def acancel(self, queue: str, job_id: str) -> CancelCode:
        """Async twin of `cancel`."""
        return await self.arun(calls.cancel(self.keys(queue), job_id, self.settings.events_maxlen))

    def redrive(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> list[str]:
        """Move dead jobs back to ready, their chords failed first; see `Broker.redrive`."""
        self.deliver_chord_failures(queue)
        return self.run(calls.redrive(self.keys(queue), job_ids, limit))

    async def aredrive(
        self, queue: str, job_ids: Sequence[str] = (), limit: int = 100
    ) -> list[str]:
        """Async twin of `redrive`."""
        await self.adeliver_chord_failures(queue)
        return await self.arun(calls.redrive(self.keys(queue), job_ids, limit))

    def purge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Delete dead jobs for good; see `Broker.purge`."""
        return self.run(calls.purge(self.keys(queue), job_ids, limit))

    async def apurge(self, queue: str, job_ids: Sequence[str] = (), limit: int = 100) -> int:
        """Async twin of `purge`."""
        return await self.arun(calls.purge(self.keys(queue), job_ids, limit))

    def purge_ready(self, queue: str, *, delayed: bool = False, limit: int = 1000) -> int:
        """Delete a batch of the queue's waiting jobs; see `Admin.purge_ready`."""
        return self.run(calls.purge_ready(self.keys(queue), delayed, check_limit(limit)))

    async def apurge_ready(self, queue: str, *, delayed: bool = False, limit: int = 1000) -> int:
        """Async twin of `purge_ready`."""
        return await self.arun(calls.purge_ready(self.keys(queue), delayed, check_limit(limit)))

    def set_paused(self, queue: str, paused: bool) -> bool:
        """Pause or resume a queue (a paused one hands out no job); False: it already was so."""
        changed = self.run(calls.set_paused(self.keys(queue), paused))
        self._register(queue)
        return changed

    async def aset_paused(self, queue: str, paused: bool) -> bool:
        """Async twin of `set_paused`."""
        changed = await self.arun(calls.set_paused(self.keys(queue), paused))
        await self._aregister(queue)
        return changed

    def chord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Record a chord in its callback's queue; False when it was already recorded."""
        send_ms = self.settings.chord_send_ms
        keys = self.keys(queue)
        return self.run(calls.chord_start(keys, chord_id, size, callback, placeholder, send_ms))

    async def achord_start(
        self, queue: str, chord_id: str, size: int, callback: NewJob, placeholder: bytes
    ) -> bool:
        """Async twin of `chord_start`."""
        send_ms = self.settings.chord_send_ms
        keys = self.keys(queue)
        call = calls.chord_start(keys, chord_id, size, callback, placeholder, send_ms)
        return await self.arun(call)

    def chord_arm(self, queue: str, chord_id: str) -> bool:
        """Every member was sent; see `Broker.chord_arm`."""
        age = self.settings.dead_max_age_ms
        return self.run(calls.chord_arm(self.keys(queue), chord_id, age))

    async def achord_arm(self, queue: str, chord_id: str) -> bool:
        """Async twin of `chord_arm`."""
        age = self.settings.dead_max_age_ms
        return await self.arun(calls.chord_arm(self.keys(queue), chord_id, age))

    def sample_throughput(self, queue: str, *, now: float | None = None) -> Sampled:
        """File the queue's counters for its throughput series; see `Admin.sample_throughput`."""
        return self.run(sample_call(self.keys(queue).namespace, queue, now))

    async def asample_throughput(self, queue: str, *, now: float | None = None) -> Sampled:
        """Async twin of `sample_throughput`."""
        return await self.arun(sample_call(self.keys(queue).namespace, queue, now))
