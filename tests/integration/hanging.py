"""A task body that outlives its soft time limit, for tests of the hard limit's kill."""

from __future__ import annotations

import contextlib
import time

from errands import SoftTimeLimitExceeded

__all__ = ["hang_past_the_soft_limit"]


def hang_past_the_soft_limit(bound_s: float = 30.0) -> None:
    """Sleep on through `SoftTimeLimitExceeded`, until the supervisor kills the process."""
    deadline = time.monotonic() + bound_s  # a bound, should no kill come
    while time.monotonic() < deadline:
        with contextlib.suppress(SoftTimeLimitExceeded):
            time.sleep(0.05)
