"""Retry policy: which errors are retried, how many times, and how long to wait (pure functions).

Backoff is exponential with a cap and *full jitter*: the delay before attempt n+1 is drawn
uniformly from [0, min(cap, base * 2**(n-1))], which spreads a thundering herd of retries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from errands.errors import ConfigurationError, Retry

__all__ = ["RetryPolicy", "backoff_delay"]


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, *, jitter: bool, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based).

    Args:
        attempt: the attempt that just failed, 1 for the first run.
        base_s: the delay after the first failure, before jitter.
        cap_s: the largest delay, before jitter.
        jitter: draw uniformly from [0, delay] (full jitter) instead of the exact delay.
        rng: a random source, for reproducible tests.
    """
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 seconds is past any cap; avoid overflow
    delay = min(cap_s, base_s * (2.0**exponent))
    if jitter:
        return (rng or random).uniform(0.0, delay)
    return delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a task is retried.

    Attributes:
        max_retries: retries after the first attempt; finite always (0 = run once).
        autoretry_for: exception types that cause a retry.
        dont_autoretry_for: exception types that never do, even if they match autoretry_for.
        backoff_s: base delay in seconds (0 retries at once).
        backoff_max_s: the cap of the exponential delay.
        jitter: full jitter on the delay.
    """

    max_retries: int = 3
    autoretry_for: tuple[type[BaseException], ...] = (Exception,)
    dont_autoretry_for: tuple[type[BaseException], ...] = ()
    backoff_s: float = 1.0
    backoff_max_s: float = 600.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_retries is None or isinstance(self.max_retries, bool):
            raise ConfigurationError(
                "max_retries=None would retry forever: pass a number such as 3, or 0 for no retry"
            )
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, not {self.max_retries!r}")
        if self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ConfigurationError("retry_backoff and retry_backoff_max must be >= 0 seconds")

    @property
    def max_attempts(self) -> int:
        """Runs in all: the first plus the retries."""
        return self.max_retries + 1

    def retryable(self, error: BaseException) -> bool:
        """True when `error` asks for another attempt (if any is left)."""
        if isinstance(error, Retry):
            return True
        if isinstance(error, self.dont_autoretry_for):
            return False
        return isinstance(error, self.autoretry_for)

    def delay_s(
        self, attempt: int, error: BaseException, rng: random.Random | None = None
    ) -> float:
        """Seconds before the next attempt after `attempt` failed with `error`."""
        if isinstance(error, Retry) and error.countdown is not None:
            return max(0.0, error.countdown)
        return backoff_delay(
            attempt, self.backoff_s, self.backoff_max_s, jitter=self.jitter, rng=rng
        )
