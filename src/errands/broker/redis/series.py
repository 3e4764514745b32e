"""The throughput series on Redis: the calls of ``lua/series.lua``, built and parsed once.

A queue's series is the HASH ``<namespace>:{<queue>}:series`` (minute start -> the counters
then), beside the queue's ``stats`` and under its hash tag, so a sample is one call on one
Cluster slot. The functions take these two keys only, not the queue's whole list.
"""

from __future__ import annotations

from typing import Any

from errands.broker.redis.calls import Arg, Call
from errands.broker.redis.library import function_name
from errands.broker.series import (
    SERIES_KEEP_S,
    Sampled,
    ThroughputPoint,
    check_minutes,
    throughput_points,
)

__all__ = ["SERIES_SUFFIXES", "sample_call", "series_keys", "view_call"]

#: The keys of a queue the series functions take, in their KEYS order.
SERIES_SUFFIXES = ("stats", "series")


def series_keys(namespace: str, queue: str) -> tuple[str, ...]:
    """The keys of `queue`'s series functions, in KEYS order (its ``stats`` and ``series``)."""
    return tuple(f"{namespace}:{{{queue}}}:{suffix}" for suffix in SERIES_SUFFIXES)


def _ms(at_s: float | None) -> Arg:
    return "" if at_s is None else int(at_s * 1000)


def sample_call(namespace: str, queue: str, now_s: float | None = None) -> Call[Sampled]:
    """The call filing `queue`'s counters under the current minute (`now_s`: None for Redis')."""

    def parse(reply: list[Any]) -> Sampled:
        written, next_in_ms = reply
        return Sampled(int(written) == 1, int(next_in_ms) / 1000)

    args = (_ms(now_s), SERIES_KEEP_S)
    return Call(function_name("series_sample"), series_keys(namespace, queue), args, parse)


def view_call(
    namespace: str, queue: str, minutes: int, until_s: float | None = None
) -> Call[list[ThroughputPoint]]:
    """The read of `queue`'s last `minutes` whole minutes before `until_s` (None: now)."""
    check_minutes(minutes)

    def parse(reply: list[Any]) -> list[ThroughputPoint]:
        last, *samples = reply
        # No series at all: every minute is a gap.
        return throughput_points(int(last), samples or [None] * (minutes + 1))

    keys = series_keys(namespace, queue)
    return Call(function_name("series_view"), keys, (_ms(until_s), minutes), parse, read_only=True)
