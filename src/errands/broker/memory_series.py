"""The throughput series of a `MemoryBroker`, as ``lua/series.lua`` keeps it in Redis.

A queue's samples are a dict (minute start, Unix seconds -> the encoded counters), changed
under the broker's lock by the same rules: the first sample of a minute wins, and a sample
that writes drops those older than `SERIES_KEEP_S`.
"""

from __future__ import annotations

from collections.abc import Mapping

from errands.broker.series import (
    SERIES_KEEP_S,
    Sampled,
    ThroughputPoint,
    check_minutes,
    encode_sample,
    minute_of,
    throughput_points,
)

__all__ = ["sample", "view"]


def sample(samples: dict[int, bytes], stats: Mapping[str, int], now_ms: int) -> Sampled:
    """File `stats` under the minute of `now_ms` unless it has a sample (series_sample)."""
    minute = minute_of(now_ms)
    next_in_s = ((minute + 60) * 1000 - now_ms) / 1000
    if minute in samples:
        return Sampled(False, next_in_s)
    samples[minute] = encode_sample(stats)
    for old in [at for at in samples if at <= minute - SERIES_KEEP_S]:
        del samples[old]
    return Sampled(True, next_in_s)


def view(samples: Mapping[int, bytes], until_ms: int, minutes: int) -> list[ThroughputPoint]:
    """The points of the `minutes` whole minutes before the one of `until_ms` (series_view)."""
    check_minutes(minutes)
    last = minute_of(until_ms)
    wanted = [samples.get(last - 60 * (minutes - i)) for i in range(minutes + 1)]
    return throughput_points(last, wanted)
