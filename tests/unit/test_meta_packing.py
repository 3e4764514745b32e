"""A new job's meta is packed by the producer; the enqueue function appends only the score."""

from __future__ import annotations

import msgspec

from errands.broker.redis.calls import enqueue
from errands.broker.redis.keys import QueueKeys
from errands.broker.types import NewJob

_FIELDS_PER_JOB = 7  # enqueue.lua's ARGV record


def _meta_as_stored(job: NewJob, score: int) -> dict[str, object]:
    """The meta map Redis stores: the head the call carries, then the score's value."""
    call = enqueue(QueueKeys("ns", "default"), [job])
    head = call.args[4]  # prefix, count, then the record: id, payload, meta, ...
    assert isinstance(head, bytes)
    stored: dict[str, object] = msgspec.msgpack.decode(head + msgspec.msgpack.encode(score))
    return stored


def test_a_ready_job_s_meta_ends_with_the_score_the_function_appends() -> None:
    job = NewJob("id1", b"{}", priority=7, max_attempts=4, result_ttl_ms=1000, max_stalls=2)
    assert _meta_as_stored(job, 123) == {
        "a": 0, "m": 4, "p": 7, "st": 0, "xs": 2, "d": 0, "rt": 1000, "ir": 0,
        "s": "queued", "sc": 123,
    }  # fmt: skip


def test_a_scheduled_keyed_job_s_meta_carries_its_key_and_mode() -> None:
    key = "invoice:" + "x" * 300  # a str16 in msgpack, not a fixstr
    job = NewJob(
        "id2", b"{}", delay_ms=5000, idempotency_key=key, idempotency_mode="until_finished",
        ignore_result=True,
    )  # fmt: skip
    meta = _meta_as_stored(job, 0)
    assert (meta["s"], meta["ik"], meta["im"], meta["ir"], meta["sc"]) == (
        "scheduled", key, "u", 1, 0,
    )  # fmt: skip


def test_each_job_is_one_record_of_seven_fields() -> None:
    jobs = [NewJob(f"id{i}", b"{}") for i in range(3)]
    call = enqueue(QueueKeys("ns", "default"), jobs)
    assert len(call.args) == 2 + _FIELDS_PER_JOB * len(jobs) + 1  # then the events cap
    assert call.args[-1] == 0
    assert [call.args[2 + i * _FIELDS_PER_JOB] for i in range(3)] == ["id0", "id1", "id2"]
