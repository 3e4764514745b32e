"""The whole fleet of live workers, as one list: each queue's worker list merged by worker id.

A worker is recorded in each queue it serves (``heartbeat.lua``); `Inspector.fleet` reads the
same page of every queue's list and merges them here. A page after worker `after` of `limit`
workers is exact: any of the first `limit` workers after `after` in the fleet is among the first
`limit` after `after` in each of its queues. So a page costs one bounded read per queue.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from errands.broker.views import Page, WorkerSummary

__all__ = ["merge_fleet"]


def merge_fleet(pages: Iterable[Page[WorkerSummary]], limit: int) -> Page[WorkerSummary]:
    """One page of the fleet from the same page (`after`, `limit`) of each queue's workers.

    A worker listed by several queues is listed once: its latest record, holding the jobs it
    holds in all of them.
    """
    merged: dict[str, WorkerSummary] = {}
    more = False
    for page in pages:
        more = more or page.cursor is not None
        for worker in page.items:
            known = merged.get(worker.id)
            if known is None:
                merged[worker.id] = worker
                continue
            latest = worker if worker.seen_at > known.seen_at else known
            holding = sorted({*known.holding, *worker.holding})
            merged[worker.id] = msgspec.structs.replace(latest, holding=holding)
    ordered = [merged[key] for key in sorted(merged)]
    items = ordered[:limit]
    more = more or len(ordered) > limit
    return Page(items, items[-1].id if more and items else None)
