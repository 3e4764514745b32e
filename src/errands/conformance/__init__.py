"""The broker conformance suite: what any broker must answer to run errands' workers.

Each check is a plain async function that takes a `Subject` (a fresh, empty broker and a way to
let its time pass) and asserts, with a message, what the broker must answer. `CHECKS` names
them all, in a stable order, by the function's name without its ``check_`` prefix. Run them
with `errands.testing.check_broker`, which makes a broker per check, closes it after and reports
every failure; errands' own RedisBroker and MemoryBroker are held to it that way.

The checks use `assert`: under ``python -O`` they would check nothing, and `check_broker`
refuses to run.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from errands.conformance import (
    acks,
    chords,
    dead,
    enqueue,
    inspector,
    leases,
    limits,
    operations,
    progress,
    reads,
    schedules,
    series,
)
from errands.conformance.subject import Check, Clock, Subject

__all__ = ["CHECKS", "Check", "Clock", "Subject", "check_name"]


def check_name(check: Check) -> str:
    """The name `check` is listed under in `CHECKS`: its function name without ``check_``."""
    return getattr(check, "__name__", repr(check)).removeprefix("check_")


CHECKS: Mapping[str, Check] = MappingProxyType(
    {
        check_name(check): check
        for module in (
            enqueue,
            acks,
            dead,
            reads,
            inspector,
            operations,
            leases,
            limits,
            progress,
            chords,
            schedules,
            series,
        )
        for check in module.CHECKS
    }
)
"""Every check, by name, in the order they run: enqueue and fetch, acks and cancels, the dead
set and maintenance, reads and waits, the inspector, operators' changes, leases, limiters,
progress, chords, the schedule store, the throughput series."""
