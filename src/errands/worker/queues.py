"""Which queue a worker serves first: strict order, or weights (pure functions)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from errands.broker.names import check_queue_name
from errands.errors import ConfigurationError

__all__ = ["QueueSelection", "parse_queues"]


@dataclass(frozen=True, slots=True)
class QueueSelection:
    """The queues a worker serves.

    Attributes:
        names: the queues, in the order given.
        weights: one weight per queue, or None for strict order (the first queue with work
            always wins).
    """

    names: tuple[str, ...]
    weights: tuple[int, ...] | None = None

    def order(self, rng: random.Random | None = None) -> list[str]:
        """The order to try the queues in for one fetch.

        Strict: as given. Weighted: a weighted shuffle, so over many fetches each queue comes
        first in proportion to its weight, and none is starved.
        """
        if self.weights is None:
            return list(self.names)
        source = rng or random
        remaining = list(zip(self.names, self.weights, strict=True))
        ordered: list[str] = []
        while remaining:
            total = sum(weight for _, weight in remaining)
            pick = source.uniform(0, total)
            for index, (name, weight) in enumerate(remaining):
                pick -= weight
                if pick <= 0 or index == len(remaining) - 1:
                    ordered.append(name)
                    del remaining[index]
                    break
        return ordered


def parse_queues(text: str) -> QueueSelection:
    """Parse ``high,default`` (strict) or ``high:3,default:1`` (weighted).

    Raises:
        ConfigurationError: an empty list, a bad name, a bad weight, or a mix of both forms.
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigurationError("give at least one queue, e.g. -Q default or -Q high,default")
    names: list[str] = []
    weights: list[int] = []
    for part in parts:
        name, colon, weight = part.partition(":")
        names.append(check_queue_name(name))
        if colon:
            if not weight.isdigit() or int(weight) < 1:
                raise ConfigurationError(f"the weight of queue {name!r} must be an int >= 1")
            weights.append(int(weight))
    if len(set(names)) != len(names):
        raise ConfigurationError(f"a queue is named twice in {text!r}")
    if weights and len(weights) != len(names):
        raise ConfigurationError(
            f"give every queue a weight (high:3,default:1) or none (high,default), not {text!r}"
        )
    return QueueSelection(tuple(names), tuple(weights) if weights else None)
