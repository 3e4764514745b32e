"""`Throttle`: one line of a kind every few seconds, saying how many it stood for.

A worker that loses Redis meets the same failure in every loop, many times a second; its log
must say so once, then once every `window_s` while it lasts: ``... (41 more like this in the
last 5 s)``. `Throttle` decides (a pure object, its clock injected); `ThrottleFilter` applies it
to the records of a logger, keyed by logger and message template.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["Throttle", "ThrottleFilter", "more_like_this"]


def more_like_this(dropped: int, window_s: float) -> str:
    """The suffix of a line that stands for `dropped` others: `` (3 more like this in ...)``."""
    return f" ({dropped} more like this in the last {window_s:g} s)" if dropped else ""


class Throttle:
    """Lets the first event of each kind through, then at most one every `window_s`.

    Args:
        window_s: the shortest time between two events of a kind that pass.
        clock: monotonic seconds (injected by tests).
        kinds: the most kinds remembered; the oldest is forgotten past it, so that a key made of
            changing text cannot grow it without a bound.
    """

    def __init__(
        self,
        window_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        kinds: int = 256,
    ) -> None:
        self.window_s = window_s
        self._clock = clock
        self._kinds = kinds
        self._seen: dict[Hashable, tuple[float, int]] = {}  # kind -> (passed at, dropped since)

    def admit(self, kind: Hashable) -> int | None:
        """None to drop this event; else it passes, standing for that many dropped before it."""
        now = self._clock()
        seen = self._seen.get(kind)
        if seen is None:
            if len(self._seen) >= self._kinds:
                del self._seen[next(iter(self._seen))]
            self._seen[kind] = (now, 0)
            return 0
        passed_at, dropped = seen
        if now - passed_at < self.window_s:
            self._seen[kind] = (passed_at, dropped + 1)
            return None
        self._seen[kind] = (now, 0)
        return dropped

    def reset(self, kind: Hashable) -> None:
        """Forget `kind` (it ended): its next event passes at once."""
        self._seen.pop(kind, None)


class ThrottleFilter(logging.Filter):
    """A logging filter that collapses repeated records (same logger and message template).

    A record that passes after others were dropped gets `more_like_this` appended.

    Args:
        throttle: the decisions (a `Throttle` of its own when None).
        levelno: records below this level are never throttled.
    """

    def __init__(self, throttle: Throttle | None = None, levelno: int = logging.WARNING) -> None:
        super().__init__()
        self.throttle = throttle or Throttle()
        self.levelno = levelno

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record to drop; a record that passes may get the suffix."""
        if record.levelno < self.levelno:
            return True
        dropped = self.throttle.admit((record.name, record.levelno, str(record.msg)))
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.msg}{more_like_this(dropped, self.throttle.window_s)}"
        return True
