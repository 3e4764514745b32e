"""`BrokerSettings`: the bounds a broker enforces, whatever a worker asks."""

from __future__ import annotations

import msgspec

__all__ = ["BrokerSettings"]


class BrokerSettings(msgspec.Struct, frozen=True):
    """Bounds the broker enforces, whatever the worker asks.

    Attributes:
        dead_max_count: the dead-letter set keeps at most this many jobs (oldest dropped first).
        dead_max_age_ms: dead jobs older than this are dropped by maintenance.
        promote_limit: due delayed jobs moved to ready per fetch.
        reap_limit: expired leases given back per fetch.
        maintenance_limit: items handled per step of one maintenance pass.
        worker_silence_ms: a worker not heard from for this long leaves the worker list.
        chord_send_ms: a chord whose members were not all sent within this (its sender
            stopped halfway) fails; one whose members were sent fails after `dead_max_age_ms`
            if they have not all reported by then.
        limits: what the app's limiters allow, sent with every fetch
            (`errands.limits.pack_limiters`; b"" when it has none).
        events_maxlen: each queue keeps a stream of about this many job events (0: none;
            `errands.observe.events`).
    """

    dead_max_count: int = 10_000
    dead_max_age_ms: int = 7 * 86_400_000
    promote_limit: int = 100
    reap_limit: int = 100
    maintenance_limit: int = 1_000
    worker_silence_ms: int = 120_000
    chord_send_ms: int = 600_000
    limits: bytes = b""
    events_maxlen: int = 0
