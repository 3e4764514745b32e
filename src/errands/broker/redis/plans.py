"""Plans: a multi-step exchange with Redis written once, run blocking or async.

A plan is a generator that yields the reads it needs next (function calls, or plain commands),
sent together in one round trip, and receives their parsed replies; it returns its answer.
`RedisBroker.run_plan` drives one blocking and `arun_plan` async, so the steps have no second
copy. What a plan sends must be safe to send again: read-only calls, or calls that change
nothing the second time (a step is sent again after the library was found missing).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from errands.broker.redis.calls import Call
from errands.broker.redis.direct import pack

__all__ = ["Command", "Plan", "Read"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """A plain Redis command and the parser of its reply."""

    parts: tuple[str | bytes | int | float, ...]
    parse: Callable[[Any], T]
    name: str
    repeatable: bool = True

    def packed(self) -> bytes:
        """The command in the Redis protocol."""
        return pack(self.parts)


#: What a plan yields: function calls and commands, sent in one round trip.
Read = Call[Any] | Command[Any]
#: A read of the model: yields batches of reads, receives their parsed replies, returns.
Plan = Generator[Sequence[Read], list[Any], T]
