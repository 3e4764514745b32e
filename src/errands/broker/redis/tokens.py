"""`RedisTokens`: the HTTP API's token records and failed attempts, over ``lua/tokens.lua``.

Its keys share one hash tag, ``<namespace>:{web:tokens}:...`` (a tag no queue can have: queue
names have no colon), so each function touches one slot. The failed attempts of a client
address are counted in ``<namespace>:{web:tokens}:fails:<address>``, a counter with a TTL.
Records are opaque here: `errands.web.tokens` encodes, decodes and checks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from errands.broker.redis.calls import Arg, Call
from errands.broker.redis.library import function_name
from errands.broker.redis.plans import Command, Plan
from errands.broker.redis.schedules import _pairs

if TYPE_CHECKING:
    from errands.broker.redis.broker import RedisBroker

__all__ = ["TOKEN_SUFFIXES", "Lookup", "RedisTokens", "StoredTokens", "token_keys"]

#: The token keys, in the KEYS order of lua/tokens.lua (``fails`` is per client address).
TOKEN_SUFFIXES = ("tokens", "revoked", "used", "forget", "fails")


def token_keys(namespace: str, client: str = "") -> tuple[str, ...]:
    """The token keys of `namespace`, in KEYS order; ``fails`` is `client`'s counter."""
    tag = f"{namespace}:{{web:tokens}}"
    return (*(f"{tag}:{suffix}" for suffix in TOKEN_SUFFIXES[:-1]), f"{tag}:fails:{client or '-'}")


def _ms(value: Any) -> int | None:
    """A time in ms from a reply (None for nil, or for a value that is not a number)."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Lookup(NamedTuple):
    """What one read found for a request (`RedisTokens.lookup`).

    Attributes:
        now_ms: the Redis server's time.
        blocked_ms: how much longer the client address is refused (0: it is not).
        record: the token's record as stored (None: no such token).
        revoked_ms: when it was revoked (None: it was not).
        used_ms: when it was last used (None: never, or not noted).
    """

    now_ms: int
    blocked_ms: int
    record: bytes | None
    revoked_ms: int | None
    used_ms: int | None


class StoredTokens(NamedTuple):
    """Every token kept, as stored (`RedisTokens.read_all`).

    Attributes:
        records: token id -> record.
        revoked_ms: token id -> when it was revoked.
        used_ms: token id -> when it was last used.
    """

    records: dict[str, bytes]
    revoked_ms: dict[str, int]
    used_ms: dict[str, int]


def _times(reply: Any) -> dict[str, int]:
    return {key: ms for key, raw in _pairs(reply).items() if (ms := _ms(raw)) is not None}


class RedisTokens:
    """The token functions of one namespace.

    Args:
        broker: the broker whose connections and namespace it uses.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._keys = token_keys(broker.namespace)

    def _call(
        self, operation: str, args: tuple[Arg, ...], client: str = "", *, read_only: bool = False
    ) -> Call[Any]:
        keys = token_keys(self._broker.namespace, client) if client else self._keys
        return Call(function_name(operation), keys, args, lambda r: r, read_only=read_only)

    async def lookup(self, token_id: str, client: str, block_after: int) -> Lookup:
        """The record of `token_id` ('' for none) and whether `client` is blocked.

        Args:
            token_id: the id the request's token names ('' when it does not parse).
            client: the request's client address.
            block_after: the failures within a window that block an address.
        """
        call = self._call("tokens_check", (token_id, block_after), client, read_only=True)
        now, blocked, record, revoked, used = await self._broker.arun(call)
        return Lookup(int(now), int(blocked), record, _ms(revoked), _ms(used))

    async def fail(self, client: str, window_ms: int) -> tuple[int, int]:
        """Count one failed attempt of `client`: its failures in the window, and ms left of it."""
        count, left = await self._broker.arun(self._call("tokens_fail", (window_ms,), client))
        return int(count), int(left)

    async def create(
        self, token_id: str, record: bytes, forget_at_ms: int | None, most: int
    ) -> int:
        """Store a new record: 1; 0 when `token_id` is taken; -1 when `most` are kept already.

        Args:
            token_id: the new token's id.
            record: what is kept of it.
            forget_at_ms: when its record is deleted (None: kept until revoked).
            most: the most tokens kept (revoked and expired ones until they are forgotten).
        """
        forget = "" if forget_at_ms is None else forget_at_ms
        call = self._call("tokens_create", (token_id, record, forget, most))
        return int(await self._broker.arun(call))

    async def revoke(self, token_id: str, keep_ms: int) -> tuple[int, int]:
        """Revoke `token_id`; `(code, revoked ms)`: 0 unknown, 1 revoked now, 2 already revoked.

        Args:
            token_id: the token's id.
            keep_ms: how long the revoked record stays listed.
        """
        code, at = await self._broker.arun(self._call("tokens_revoke", (token_id, keep_ms)))
        return int(code), int(at)

    async def touch(self, token_id: str) -> bool:
        """Note that `token_id` was used now; False when it is gone."""
        return bool(await self._broker.arun(self._call("tokens_touch", (token_id,))))

    def _read_plan(self) -> Plan[StoredTokens]:
        tokens, revoked, used = self._keys[:3]
        records, revoked_ms, used_ms = yield [
            Command(("HGETALL", tokens), _pairs, "read tokens"),
            Command(("HGETALL", revoked), _times, "read tokens"),
            Command(("HGETALL", used), _times, "read tokens"),
        ]
        return StoredTokens(records, revoked_ms, used_ms)

    async def read_all(self) -> StoredTokens:
        """Every record kept, with the revocations and last uses, in one round trip."""
        return await self._broker.arun_plan(self._read_plan())
