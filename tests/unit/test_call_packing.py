"""`Call.packed`: the head of an FCALL is packed once per function and queue, the rest per call."""

from __future__ import annotations

from errands.broker.redis.calls import Call
from errands.broker.redis.direct import pack


def _call(function: str, keys: tuple[str, ...], *args: str | bytes | int | float) -> Call[None]:
    return Call(function, keys, args, lambda reply: None)


def _command(call: Call[None]) -> tuple[str | bytes | int | float, ...]:
    """The command `call` stands for, as its parts."""
    verb = "FCALL_RO" if call.read_only else "FCALL"
    return (verb, call.function, len(call.keys), *call.keys, *call.args)


def test_packed_is_the_command_in_the_redis_protocol() -> None:
    for call in (
        _call("enqueue", ("q:a", "q:b"), "text", b"\x00bytes\r\n", 7, 2.5, ""),
        _call("fetch", ("q:a", "q:b")),  # no arguments
        Call("read", ("q:a",), ("id",), lambda reply: None, read_only=True),
    ):
        assert call.packed() == pack(_command(call))


def test_each_queue_and_function_gets_its_own_head() -> None:
    first = _call("ack", ("one:ready", "one:jobs"), "x")
    second = _call("ack", ("two:ready", "two:jobs"), "x")
    other = _call("fetch", ("one:ready", "one:jobs"), "x")
    for call in (first, second, other, first, second, other):  # from the cache the second time
        assert call.packed() == pack(_command(call))
