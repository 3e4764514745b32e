"""`Ledger`: what a worker holds and what it owes Redis, kept apart from how it talks to Redis.

It holds a lease for every job the pool runs or has queued, and owes Redis an ack for every job
that finished, a release for every job it gives back, and the follow-ups (chain steps, chord
reports) that must reach Redis before the acks of the jobs that made them. Nothing here does
I/O; the supervisor's loops read and settle it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from errands.broker.types import Lease, Outcome
from errands.worker.protocol import Finished, FollowUp

__all__ = ["Held", "Ledger"]

log = logging.getLogger("errands.worker")

_STALE_KEPT = 1024  # refused outcomes remembered; a job comes back within seconds, if at all


def _with_token(outcome: Outcome, token: str) -> Outcome:
    return Outcome(outcome.id, token, outcome.kind, outcome.outcome, outcome.retry_delay_ms)


@dataclass(slots=True)
class Held:
    """One job's lease: its queue and token."""

    queue: str
    token: str
    taken: bool = False  # leased by a child itself, which may settle it itself


class Ledger:
    """Leases held, acks and releases owed, follow-ups to send first."""

    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        # Leases Redis took back (they expired) while the job still runs here: its outcome is
        # still sent, with the old token, and Redis takes it if nobody took the job since.
        self.lost: dict[str, Held] = {}
        self.acks: dict[str, list[Outcome]] = {}
        self.releases: dict[str, list[Lease]] = {}
        self.follow_ups: list[FollowUp] = []
        self.acks_since: float | None = None  # monotonic: when the oldest unsent ack came
        self.pending_acks = 0
        self.processed = 0
        # Outcomes Redis refused as stale, newest last (bounded): if the job comes back to this
        # very worker, the outcome settles the new lease instead of a second run.
        self.stale: OrderedDict[str, Outcome] = OrderedDict()

    def hold(self, queue: str, job_id: str, token: str, *, taken: bool = False) -> None:
        """Hold the lease of a job the pool now has."""
        self.held[job_id] = Held(queue, token, taken)

    def finished(self, results: Sequence[Finished]) -> None:
        """Jobs ended: owe their acks (and their follow-ups, which go first)."""
        for result in results:
            held = self.held.pop(result.id, None) or self.lost.pop(result.id, None)
            if held is None:
                continue  # given back already: another worker may own it now
            if result.acked:  # a job the child took and settled itself
                self.processed += 1
                continue
            self.follow_ups.extend(result.follow_ups)
            self.acks.setdefault(held.queue, []).append(
                Outcome(result.id, held.token, result.kind, result.outcome, result.retry_delay_ms)
            )
            self.pending_acks += 1
            if self.acks_since is None:
                self.acks_since = time.monotonic()

    def give_back(self, job_ids: Sequence[str]) -> None:
        """The pool will not run these: owe their releases."""
        for job_id in job_ids:
            held = self.held.pop(job_id, None)
            if held is not None:
                self.releases.setdefault(held.queue, []).append(Lease(job_id, held.token))
            else:
                self.lost.pop(job_id, None)  # Redis took it back already: nothing to release

    def lose(self, renewed: Collection[Lease], lost: Collection[str]) -> None:
        """A heartbeat that renewed `renewed` says Redis no longer gives us `lost`.

        Only a lease the heartbeat sent is lost: the same job fetched again meanwhile has a new
        token, and its new lease stays held.
        """
        sent = {lease.id: lease.token for lease in renewed}
        for job_id in lost:
            held = self.held.get(job_id)
            if held is None or held.token != sent.get(job_id):
                continue
            del self.held[job_id]
            self.lost[job_id] = held
            if not held.taken:  # a child's own job was most likely acked by it a moment ago
                log.warning(
                    "lost the lease of job %s (Redis unreachable for longer than the lease?): "
                    "it may run again elsewhere; if nobody has taken it when it ends here, its "
                    "outcome still counts",
                    job_id,
                )

    def refused(self, outcome: Outcome) -> None:
        """Redis refused `outcome` as stale: keep it a while, for `reclaim`."""
        self.stale[outcome.id] = outcome
        self.stale.move_to_end(outcome.id)
        while len(self.stale) > _STALE_KEPT:
            self.stale.popitem(last=False)

    def reclaim(self, queue: str, job_id: str, token: str) -> bool:
        """A fetch gave this worker a job it already ran, or still runs: keep a single run.

        Its lease ran out (the worker was frozen, or cut off from Redis) and, nobody else having
        taken it, it came back here. Its outcome, when it is known or comes, settles the new
        lease; the job is not run again. True when the job was one of those.
        """
        held = self.lost.pop(job_id, None)
        if held is not None:  # still running here: its outcome will come under the new lease
            self.held[job_id] = Held(queue, token, held.taken)
            return True
        acks = self.acks.get(queue, [])
        for index, outcome in enumerate(acks):  # finished here, its ack not sent yet
            if outcome.id == job_id:
                acks[index] = _with_token(outcome, token)
                return True
        refused = self.stale.pop(job_id, None)
        if refused is not None:  # finished here, refused because the job was leased again
            self.acks.setdefault(queue, []).append(_with_token(refused, token))
            self.pending_acks += 1
            self.acks_since = self.acks_since or time.monotonic()
            return True
        return False

    def leases(self, queues: Sequence[str]) -> dict[str, list[Lease]]:
        """Every lease to renew, by queue: jobs held, and finished jobs whose acks are owed."""
        by_queue: dict[str, list[Lease]] = {queue: [] for queue in queues}
        for job_id, held in self.held.items():
            by_queue.setdefault(held.queue, []).append(Lease(job_id, held.token))
        for queue, outcomes in self.acks.items():
            by_queue.setdefault(queue, []).extend(Lease(o.id, o.token) for o in outcomes)
        return by_queue

    def take_acks(self) -> dict[str, list[Outcome]]:
        """The acks owed, to send now (`restore_acks` puts back those that could not go)."""
        taken, self.acks = self.acks, {}
        self.acks_since = None
        self.pending_acks = 0
        return taken

    def restore_acks(self, taken: dict[str, list[Outcome]]) -> None:
        """Put back acks that could not be sent, ahead of any that came in since."""
        for queue, acks in taken.items():
            if acks:
                self.acks[queue] = acks + self.acks.get(queue, [])
                self.pending_acks += len(acks)
                self.acks_since = self.acks_since or time.monotonic()

    def take_releases(self, queue: str) -> list[Lease]:
        """The releases owed in `queue`, to send now."""
        return self.releases.pop(queue, [])

    def restore_releases(self, queue: str, releases: list[Lease]) -> None:
        """Put back releases that could not be sent."""
        if releases:
            self.releases.setdefault(queue, []).extend(releases)

    def take_follow_ups(self) -> list[FollowUp]:
        """The follow-ups owed, to send before any ack."""
        follow_ups, self.follow_ups = self.follow_ups, []
        return follow_ups

    def restore_follow_ups(self, follow_ups: list[FollowUp]) -> None:
        """Put back follow-ups that could not be sent (all of them: each is idempotent)."""
        self.follow_ups[:0] = follow_ups

    def release_everything(self) -> None:
        """Owe a release for every job still held (the pool ran out of time for them)."""
        for job_id, held in self.held.items():
            self.releases.setdefault(held.queue, []).append(Lease(job_id, held.token))
        self.held.clear()

    def settled(self) -> bool:
        """True when nothing is held and nothing is owed."""
        return not (self.held or self.acks or self.releases or self.follow_ups)
