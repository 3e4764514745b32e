"""The throughput series: per queue and per minute, the jobs enqueued, succeeded, retried, dead.

A queue's counters (``stats``: enqueued, succeeded, retried, failed) only ever grow. Once a
minute a sampler files them under the minute they were read in, the first sample of a minute
wins (several workers and API servers sample the same queue, and the minute is written once),
and samples older than `SERIES_KEEP_S` are dropped. A minute's counts are then the difference
between its sample and the next one's. A minute without a sample on either side is a gap
(None), never a zero; a counter that went down (its queue's counters were reset) restarts
from zero instead of showing a negative rate.

This module is pure: the encoding of a sample and the arithmetic of a read, written once for
both brokers (``lua/series.lua`` and `errands.broker.memory_series`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from errands.errors import ArgumentError

__all__ = [
    "MAX_MINUTES",
    "SERIES_COUNTERS",
    "SERIES_KEEP_S",
    "Sampled",
    "ThroughputPoint",
    "check_minutes",
    "decode_sample",
    "encode_sample",
    "minute_of",
    "throughput_points",
]

#: The counters of ``stats`` a sample keeps, in its order (``failed``: sent to the dead set).
SERIES_COUNTERS = ("enqueued", "succeeded", "retried", "failed")
#: How long samples are kept, in seconds: two hours.
SERIES_KEEP_S = 7200
#: The most minutes one read returns: every minute the kept samples can tell.
MAX_MINUTES = SERIES_KEEP_S // 60


class ThroughputPoint(msgspec.Struct, frozen=True):
    """What happened in one queue in one minute.

    Each count is None when the minute is a gap: no sample at its start or at its end (no
    worker nor API server sampled the queue then).

    Attributes:
        minute: the minute's start, Unix seconds (the broker's clock).
        enqueued: jobs sent to the queue.
        succeeded: jobs that succeeded.
        retried: failed attempts that were retried.
        dead: jobs that failed for good (went to the dead set).
    """

    minute: int
    enqueued: int | None
    succeeded: int | None
    retried: int | None
    dead: int | None


class Sampled(msgspec.Struct, frozen=True):
    """What one sample did.

    Attributes:
        written: it filed the counters; False when that minute had a sample already.
        next_in_s: seconds until the next minute starts (the broker's clock): when to sample
            again.
    """

    written: bool
    next_in_s: float


def minute_of(ms: float) -> int:
    """The start (Unix seconds) of the minute that holds `ms` (ms since the epoch)."""
    return int(ms // 60_000) * 60


def check_minutes(minutes: int) -> int:
    """`minutes` when a read may return that many (1 .. `MAX_MINUTES`); else ArgumentError."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise ArgumentError(
            f"minutes must be between 1 and {MAX_MINUTES} (samples are kept "
            f"{SERIES_KEEP_S // 3600} hours), not {minutes}"
        )
    return minutes


def encode_sample(stats: Mapping[str, int]) -> bytes:
    """The sample of counters `stats`, as the series keeps it (``"12 10 1 0"``)."""
    return " ".join(str(int(stats.get(name, 0))) for name in SERIES_COUNTERS).encode()


def decode_sample(raw: object) -> tuple[int, ...] | None:
    """The counters of a kept sample; None when there is none or it cannot be read."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:
        return None
    parts = text.split()
    if len(parts) != len(SERIES_COUNTERS):
        return None
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        return None
    return values if all(v >= 0 for v in values) else None


def _increase(before: int, after: int) -> int:
    # A counter only grows; one that went down was reset, and counts again from zero.
    return after - before if after >= before else after


def throughput_points(last_minute: int, samples: Sequence[object]) -> list[ThroughputPoint]:
    """The points of the minutes before `last_minute`, oldest first, from their samples.

    Args:
        last_minute: the start (Unix seconds) of the minute under way (its counts are not
            known until the next one starts).
        samples: the samples of the n minutes before it and of it, oldest first (n + 1).
    """
    decoded = [decode_sample(raw) for raw in samples]
    n = len(decoded) - 1
    points = []
    for i in range(n):
        start = last_minute - 60 * (n - i)
        before, after = decoded[i], decoded[i + 1]
        if before is None or after is None:
            points.append(ThroughputPoint(start, None, None, None, None))
            continue
        e, s, r, d = (_increase(b, a) for b, a in zip(before, after, strict=True))
        points.append(ThroughputPoint(start, e, s, r, d))
    return points
