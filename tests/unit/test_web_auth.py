"""The pure parts of the auth: which scopes a token may hold, what they grant, durations."""

from __future__ import annotations

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from errands.cli_tokens import parse_duration
from errands.errors import ConfigurationError
from errands.web.auth import ADMIN, SCOPES, Principal, check_scopes, valid_scope
from errands.web.tokens import TokenInfo, token_document

_TASKS = ("add", "mail.send")


def _principal(*scopes: str) -> Principal:
    return Principal(TokenInfo(id="0123456789ab", scopes=scopes, created_at=0.0))


def test_check_scopes_keeps_known_scopes_once_each_in_order() -> None:
    given_scopes = ["read", " enqueue:add", "read", "enqueue:*", "operate", "admin"]
    assert check_scopes(given_scopes, _TASKS) == (
        "read",
        "enqueue:add",
        "enqueue:*",
        "operate",
        ADMIN,
    )


@pytest.mark.parametrize(
    ("scopes", "words"),
    [
        ([], "at least one scope"),
        (["reed"], "unknown scope 'reed': the scopes are enqueue:<task>, enqueue:*, read"),
        (["enqueue:"], "unknown scope 'enqueue:'"),
        (["enqueue:nope"], "'enqueue:nope' names no task of the app (its tasks: add, mail.send)"),
    ],
)
def test_check_scopes_refuses_naming_what_is_valid(scopes: list[str], words: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_scopes(scopes, _TASKS)
    assert words in str(refused.value)


def test_every_listed_scope_is_valid_and_an_enqueue_scope_needs_a_task() -> None:
    assert all(valid_scope(scope) for scope in SCOPES)
    assert valid_scope("enqueue:add")
    assert not valid_scope("enqueue:")
    assert not valid_scope("root")


def test_admin_grants_everything_and_enqueue_star_only_enqueueing() -> None:
    assert _principal(ADMIN).allows("operate")
    assert _principal(ADMIN).allows("enqueue:add")
    publisher = _principal("enqueue:*")
    assert publisher.allows("enqueue:add")
    assert not publisher.allows("read")
    assert not publisher.allows(ADMIN)
    one = _principal("enqueue:add")
    assert one.allows("enqueue:add")
    assert not one.allows("enqueue:mail.send")
    assert not _principal("read").allows("read:payloads")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 12 * 3600), ("15m", 900), ("90s", 90), ("1d12h", 36 * 3600)],
)
def test_parse_duration_reads_days_hours_minutes_and_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3", "3x", "1w", "0m", "-5m", "1h 2m", "h"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)


@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from("smhd")), min_size=1, max_size=4))
def test_parse_duration_adds_up_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    total = sum(n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit] for n, unit in parts)
    if total == 0:
        with pytest.raises(click.BadParameter):
            parse_duration(text)
    else:
        assert parse_duration(text) == total


def test_a_token_document_has_iso_times_a_state_and_no_secret() -> None:
    info = TokenInfo(id="0123456789ab", scopes=("read",), created_at=0.0, expires_at=60.0, note="n")
    assert token_document(info, now=30.0) == {
        "id": "0123456789ab",
        "scopes": ["read"],
        "state": "active",
        "created_at": "1970-01-01T00:00:00.000Z",
        "expires_at": "1970-01-01T00:01:00.000Z",
        "last_used_at": None,
        "revoked_at": None,
        "note": "n",
    }
    assert token_document(info, now=60.0)["state"] == "expired"
    revoked = TokenInfo(id="0123456789ab", scopes=("read",), created_at=0.0, revoked_at=1.0)
    assert token_document(revoked, now=2.0)["state"] == "revoked"
