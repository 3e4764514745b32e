"""`Bell`: what the supervisor's loop sleeps on between exchanges."""

from __future__ import annotations

import asyncio

__all__ = ["Bell"]


class Bell:
    """An `asyncio.Event` whose wait is one reusable future: no task per idle loop."""

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Ring: the loop wakes (or does not sleep next time)."""
        self._set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        """Forget a ring: the loop is about to look at everything anyway."""
        self._set = False

    def is_set(self) -> bool:
        """Rang since the last `clear`?"""
        return self._set

    def waiter(self) -> asyncio.Future[None]:
        """A future done once the bell is set (at once if it is set now)."""
        if self._waiter is None or self._waiter.done():
            self._waiter = asyncio.get_running_loop().create_future()
        if self._set:
            self._waiter.set_result(None)
        return self._waiter
