"""Applying follow-ups: what a finished job asks of Redis before it is acknowledged.

Every follow-up is idempotent (a chain step has a derived id, a chord member counts once), so
sending one again after a crash or a lost reply changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from errands.broker.types import NewJob
from errands.worker.protocol import FollowUp

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["apply_follow_ups"]


async def apply_follow_ups(app: App, follow_ups: Sequence[FollowUp]) -> None:
    """Enqueue chain steps (one call per queue) and report chord members, in order.

    Steps go through the app's middleware and `Broker.acontinue`: a full Redis refuses new
    work, not the steps of work it holds, whose parents' acks wait for them.
    """
    steps: dict[str, list[NewJob]] = {}
    for follow_up in follow_ups:
        if follow_up.job is not None:
            steps.setdefault(follow_up.queue, []).append(follow_up.job)
        else:
            await app.broker.chord_part(
                follow_up.queue, follow_up.chord, follow_up.index, follow_up.data
            )
    for queue, jobs in steps.items():
        await app.acontinue(queue, jobs)
