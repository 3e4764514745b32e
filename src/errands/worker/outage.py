"""How a worker rides out a Redis that cannot serve it: capped backoff, and a log that stays short.

Every loop of the supervisor retries a call that failed with `BrokerUnavailable` (unreachable,
a timeout, OOM, READONLY, LOADING, BUSY...) after a capped, jittered backoff. They share one
`Outage`, so an outage is logged once when it starts, then in one line every `REPEAT_S` that
says how many failed calls it stands for (`errands.observe.throttle`), and once when Redis
answers again, however many loops meet it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from errands.errors import BrokerUnavailable
from errands.observe.throttle import Throttle, more_like_this

__all__ = ["REPEAT_S", "Backoff", "Outage", "keep_trying"]

log = logging.getLogger("errands.worker")

REPEAT_S = 5.0  # an outage that lasts is logged again this often, never more
_FIRST_S = 0.1
_MAX_S = 5.0  # the longest pause between two tries: a worker notices Redis is back this soon
_STILL = "still failing"  # the throttle's kind for the lines of an outage that lasts


class Outage:
    """Whether the worker's calls to Redis fail now, and since when.

    Args:
        where: the broker, as logs may show it (password redacted).
        clock: monotonic seconds (injected by tests).
    """

    def __init__(self, where: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.where = where
        self.since: float | None = None  # monotonic: when the first call failed
        self.failures = 0
        self._clock = clock
        self._throttle = Throttle(REPEAT_S, clock)

    @property
    def ongoing(self) -> bool:
        """True while the last call failed."""
        return self.since is not None

    def failed(self, what: str, error: BaseException, *, first: str | None = None) -> None:
        """A call (`what`: heartbeat, exchange...) failed for a reason that passes.

        Args:
            what: the call, as the log names it.
            error: why it failed.
            first: the line logged when the outage starts (``{reason}`` stands for the error),
                instead of the one that says running jobs go on.
        """
        now = self._clock()
        self.failures += 1
        reason = _reason(error)
        if self.since is None:
            self.since = now
            self._throttle.reset(_STILL)
            self._throttle.admit(_STILL)  # the first line counts: the next one waits REPEAT_S
            template = first or (
                f"{what} failed: {{reason}}; retrying with backoff (up to {_MAX_S:g}s apart), "
                "running jobs go on"
            )
            log.warning(template.format(reason=reason))
            return
        dropped = self._throttle.admit(_STILL)
        if dropped is not None:
            log.warning(
                "Redis at %s still failing after %.0fs (%d failed calls, the last one: %s): %s%s",
                self.where,
                now - self.since,
                self.failures,
                what,
                reason,
                more_like_this(dropped, REPEAT_S),
            )

    def recovered(self) -> None:
        """A call succeeded: log once that the outage ended."""
        if self.since is None:
            return
        log.info(
            "Redis at %s answers again after %.1fs (%d failed calls)",
            self.where,
            self._clock() - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError) and not str(error):
        return "no reply in time"
    return str(error) or type(error).__name__


class Backoff:
    """The pause before one loop's next try: doubling from 0.1 s to 5 s, drawn in its upper half.

    The jitter keeps workers that lost Redis together from all coming back at one instant.
    """

    def __init__(self) -> None:
        self._next = _FIRST_S

    def pause(self) -> float:
        """Seconds to wait before trying again (and the next one is longer, up to the cap)."""
        pause = random.uniform(self._next / 2, self._next)
        self._next = min(self._next * 2, _MAX_S)
        return pause

    def reset(self) -> None:
        """A call succeeded: the next failure starts from the shortest pause again."""
        self._next = _FIRST_S


async def keep_trying(
    call: Callable[[], Awaitable[None]],
    what: str,
    outage: Outage,
    timeout_s: float,
    give_up: Callable[[], bool] = lambda: False,
) -> bool:
    """Run `call` until it succeeds, pausing with `Backoff` while Redis cannot serve it.

    Each try is bounded by `timeout_s`. Any error other than `BrokerUnavailable` (or the
    timeout) is not passing and goes up to the caller.

    Returns:
        True once `call` succeeded; False when `give_up()` turned true after a failure.
    """
    backoff = Backoff()
    while True:
        try:
            async with asyncio.timeout(timeout_s):
                await call()
        except (BrokerUnavailable, TimeoutError) as error:
            if give_up():
                return False
            outage.failed(what, error)
            await asyncio.sleep(backoff.pause())
        else:
            outage.recovered()
            return True
