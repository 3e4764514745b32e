"""Arguments must be JSON values: anything else is refused with its path and what to pass."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errands import ArgumentError
from errands.broker.reading import payload_head
from errands.message import (
    JobRecord,
    check_arguments,
    check_json,
    decode_record,
    encode_record,
)


class User:
    """A model object, as an ORM would hand one out."""

    def __init__(self, user_id: int) -> None:
        self.id = user_id


class Colour(enum.Enum):
    RED = "red"


def refusal(args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> str:
    """The message `check_arguments` refuses these arguments with."""
    with pytest.raises(ArgumentError) as caught:
        check_arguments(args, kwargs or {})
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (dt.datetime(2024, 5, 1, tzinfo=dt.UTC), "is a datetime: pass an ISO 8601 string"),
        (dt.date(2024, 5, 1), "is a date: pass an ISO 8601 string"),
        (dt.timedelta(seconds=3), "is a timedelta: pass a number of seconds"),
        ({1, 2}, "is a set: pass a list (sorted(value))"),
        (frozenset({1}), "is a set: pass a list"),
        ((1, 2), "is a tuple: pass a list"),
        (b"raw", "is bytes: pass a base64 or text string"),
        (bytearray(b"raw"), "is bytes: pass a base64 or text string"),
        (decimal.Decimal("1.10"), "is a Decimal: pass a string (str(value)) to keep its precision"),
        (uuid.UUID(int=7), "is a UUID: pass a string (str(value))"),
        (Colour.RED, "is an Enum: pass its value (value.value)"),
        (1j, "is a complex number: pass [real, imag]"),
        (len, "is a callable (builtin_function_or_method): pass a task signature or a name"),
        (
            User(42),
            f"is a {__name__}.User: pass its id and load it inside the task, "
            "or a dict of plain values",
        ),
    ],
)
def test_a_value_json_cannot_hold_is_refused_with_its_path_and_a_fix(
    value: object, message: str
) -> None:
    assert refusal((value,)).startswith(f"args[0] {message}")


@pytest.mark.parametrize(
    ("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_a_float_json_cannot_hold_is_refused(value: float, shown: str) -> None:
    assert refusal((1, [value])) == (
        f"args[1][0] is {shown}, which JSON cannot hold: pass None or a string"
    )


def test_the_path_names_the_argument_and_every_key_and_index_down_to_the_value() -> None:
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert refusal((1, {"when": when})).startswith('args[1]["when"] is a datetime')
    user = {"name": "ada", "tags": ["a", "b", {3}]}
    assert refusal(kwargs={"user": user}).startswith('kwargs["user"]["tags"][2] is a set')


def test_keys_in_the_path_are_quoted_as_json_strings() -> None:
    message = refusal(kwargs={'say "hi"': {"ünï\n": b"x"}})
    assert message.startswith('kwargs["say \\"hi\\""]["ünï\\n"] is bytes')


@pytest.mark.parametrize(
    ("key", "shown"), [(1, "1 (int)"), (True, "True (bool)"), (None, "None (NoneType)")]
)
def test_a_dict_key_that_is_not_a_string_is_refused(key: object, shown: str) -> None:
    assert refusal(kwargs={"counts": {key: 1}}) == (
        f'kwargs["counts"] has the key {shown}: JSON object keys are strings, so pass str(key)'
    )


def test_subclasses_of_json_types_are_refused_because_they_would_not_come_back() -> None:
    class Flag(enum.IntEnum):
        ON = 1

    assert refusal((Flag.ON,)) == "args[0] is an Enum: pass its value (value.value)"


def test_the_first_bad_value_is_the_one_named() -> None:
    assert refusal(({1}, b"x")).startswith("args[0] is a set")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(value=json_values)
def test_every_json_value_passes(value: object) -> None:
    check_json(value, "value")


def test_a_valid_nested_call_passes_and_survives_the_round_trip() -> None:
    args = (1, 2.5, "x", None, True, [1, [2, {"a": []}]])
    kwargs = {"user": {"id": 7, "tags": ["a", "b"], "score": -0.0, "meta": {}}}
    check_arguments(args, kwargs)
    record = JobRecord(id="j1", task="t", queue="q", args=list(args), kwargs=kwargs)
    decoded = decode_record(encode_record(record, max_bytes=10_000))
    assert (decoded.args, decoded.kwargs) == (list(args), kwargs)


def test_a_payload_over_the_limit_is_refused_with_its_size_and_what_to_do() -> None:
    record = JobRecord(id="j1", task="reports.build", queue="q", args=["x" * 2_000])
    size = len(encode_record(record, max_bytes=1_000_000))
    assert encode_record(record, max_bytes=size)  # exactly at the limit is allowed
    expected = (
        f"the payload of task 'reports.build' is {size:,} bytes, over the limit of {size - 1:,}: "
        "store large data elsewhere"
    )
    with pytest.raises(ArgumentError, match=re.escape(expected)) as caught:
        encode_record(record, max_bytes=size - 1)
    assert "App(max_payload_bytes=...)" in str(caught.value)


def test_a_payload_starts_with_what_the_inspector_reads_before_the_arguments() -> None:
    # payload_head in lua/00_shared.lua reads the task and enqueue time without parsing the
    # arguments, which may hold the same keys.
    record = JobRecord(
        id="j1",
        task="t",
        queue="q",
        args=[{"task": "not me", "enqueued_at": 1}],
        kwargs={"enqueued_at": 2},
        priority=3,
        enqueued_at=1.5,
    )
    assert encode_record(record, 10_000).startswith(
        b'{"id":"j1","task":"t","queue":"q","priority":3,"enqueued_at":1.5,"args":'
    )
    assert payload_head(encode_record(record, 10_000)) == ("t", 1.5)
