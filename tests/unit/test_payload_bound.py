"""`payload_bound`: never below the size of the payload `encode_record` makes."""

from __future__ import annotations

import sys

import pytest

from errands.message import JobRecord, encode_record, payload_bound

_CASES = {
    "no arguments": ("app.noop", "default", "0" * 32, [], {}),
    "control characters": ("\x01\x02" * 20, "q", "\x1f" * 10, ["\x00" * 50], {"\x07": "\x08"}),
    "non-ascii": ("tâche.été", "défaut", "ід", ["日本語" * 30], {"clé": ["ü"] * 5}),
    "numbers": ("n", "q", "i", [sys.float_info.min, -sys.float_info.max, 2**62], {"x": 1e-300}),
    "user job id": ("t", "q", "order-" + "9" * 200, [{"a": [None, True]}], {}),
}


@pytest.mark.parametrize(("task", "queue", "job_id", "args", "kwargs"), _CASES.values(), ids=_CASES)
def test_the_bound_is_at_least_the_payload(
    task: str, queue: str, job_id: str, args: list[object], kwargs: dict[str, object]
) -> None:
    record = JobRecord(
        id=job_id, task=task, queue=queue, args=args, kwargs=kwargs, priority=9,
        enqueued_at=-1.2345678901234567e-300, soft_time_limit=1.2345678901234567e300,
        time_limit=-2.2250738585072014e-308,
    )  # fmt: skip
    actual = len(encode_record(record, max_bytes=10**9))
    assert actual <= payload_bound(task, queue, job_id, args, kwargs) <= 8 * actual + 400
