"""Queue selection: strict order, weights, and the errors of -Q."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from errands import ConfigurationError
from errands.worker.queues import QueueSelection, parse_queues


def test_strict_queues_are_tried_in_the_order_given() -> None:
    selection = parse_queues("high, default ,low")
    assert selection == QueueSelection(("high", "default", "low"))
    assert selection.order() == ["high", "default", "low"]


def test_weighted_queues_come_first_in_proportion_to_their_weight() -> None:
    selection = parse_queues("high:3,default:1")
    rng = random.Random(7)
    firsts = Counter(selection.order(rng)[0] for _ in range(4000))
    assert 0.70 < firsts["high"] / 4000 < 0.80
    assert all(sorted(selection.order(rng)) == ["default", "high"] for _ in range(50))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one queue"),
        ("high:3,default", "every queue a weight"),
        ("high:0", "weight of queue 'high'"),
        ("a,a", "named twice"),
        ("{bad}", "not allowed"),
    ],
)
def test_bad_queue_lists_are_refused_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_queues(text)
