"""The broker a check runs against, and how time passes for it.

A check gets a `Subject`: the broker, and `elapse` to let broker time pass. With a `Clock`
(a function of the current time in seconds that the caller can also move) time passes at once;
without one, `elapse` sleeps, so leases and TTLs in the checks are tens of milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from errands.broker.base import Broker

__all__ = ["BRIEF_MS", "LONG_MS", "SHORT_MS", "Check", "Clock", "Subject"]

SHORT_MS = 40  # a lease or TTL that a check lets expire, asserting nothing before it does
BRIEF_MS = 300  # a delay or TTL that must still hold for a few calls, then expire
LONG_MS = 60_000  # a lease or delay that must not expire during a check
_SLEEP_MARGIN_S = 0.015  # a server's clock against ours: sleep a little past a deadline


class Clock(Protocol):
    """A clock the broker reads and the caller moves.

    The broker calls it for the time, in seconds like `time.time`; `advance` moves it forward.
    `errands.testing.ManualClock` is one.
    """

    def __call__(self) -> float:
        """The current time in seconds since the epoch."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` forward."""
        ...


class Subject:
    """A broker under check, and how to let its time pass.

    Args:
        broker: the broker the check calls, fresh and empty.
        clock: the clock that broker reads, moved by `elapse`; None when the broker reads real
            time, and `elapse` sleeps instead.
    """

    def __init__(self, broker: Broker, clock: Clock | None = None) -> None:
        self.broker = broker
        self.clock = clock

    def elapse(self, ms: int) -> None:
        """Let `ms` pass as the broker sees it: move its clock, or sleep just past it.

        The sleep blocks the event loop, as a moved clock does: the time passes between two
        calls of the check, and nothing else the check started runs meanwhile.
        """
        if self.clock is not None:
            self.clock.advance(ms / 1000)
        else:
            time.sleep(ms / 1000 + _SLEEP_MARGIN_S)

    def now_ms(self) -> int:
        """The broker's time, in ms since the epoch."""
        return round((self.clock or time.time)() * 1000)


Check = Callable[[Subject], Awaitable[None]]
"""A conformance check: it drives the subject's broker and asserts what it must answer."""
