"""A sorted set with the ordering of a Redis ZSET, for the in-memory broker."""

from __future__ import annotations

import heapq

__all__ = ["ZSet"]


class ZSet:
    """A Redis sorted set: members read lowest score first, ties broken by member.

    The dict holds the true scores. The heap holds (score, member) entries, some stale (the
    member left or changed score); a stale entry is skipped when it reaches the top, so every
    operation stays O(log n) without searching the heap.
    """

    __slots__ = ("_heap", "_scores")

    def __init__(self) -> None:
        self._scores: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, member: object) -> bool:
        return member in self._scores

    def score(self, member: str) -> int | None:
        """The member's score, None when absent (ZSCORE)."""
        return self._scores.get(member)

    def add(self, member: str, score: int) -> None:
        """Add the member, or move it to `score` (ZADD)."""
        self._scores[member] = score
        heapq.heappush(self._heap, (score, member))
        if len(self._heap) > 2 * len(self._scores) + 64:
            # Too many stale entries (heartbeats re-score leases all the time): rebuild.
            self._heap = [(s, m) for m, s in self._scores.items()]
            heapq.heapify(self._heap)

    def discard(self, member: str) -> bool:
        """Remove the member; True when it was there (ZREM)."""
        return self._scores.pop(member, None) is not None

    def _top(self) -> tuple[int, str] | None:
        heap = self._heap
        while heap and self._scores.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def first(self) -> tuple[str, int] | None:
        """The lowest member and its score, without removing it."""
        top = self._top()
        return None if top is None else (top[1], top[0])

    def pop_min(self, count: int, max_score: int | None = None) -> list[str]:
        """Remove and return up to `count` lowest members (ZPOPMIN), none above `max_score`."""
        out: list[str] = []
        while len(out) < count:
            top = self._top()
            if top is None or (max_score is not None and top[0] > max_score):
                break
            heapq.heappop(self._heap)
            del self._scores[top[1]]
            out.append(top[1])
        return out

    def lowest(self, count: int) -> list[tuple[str, int]]:
        """The `count` lowest members and their scores, left in place."""
        pairs = heapq.nsmallest(max(count, 0), ((s, m) for m, s in self._scores.items()))
        return [(m, s) for s, m in pairs]
