"""Bearer tokens: created once, kept in Redis only as a hash, checked in constant time.

A token reads ``erd_<id>_<secret>``: the id finds its record, the secret is checked against
the SHA-256 kept there with `hmac.compare_digest`. The secret itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    import redis.asyncio as aredis

    from errands.app import App

__all__ = ["TokenInfo", "TokenStore", "token_store"]

_PREFIX = "erd_"


class TokenInfo(msgspec.Struct, frozen=True):
    """What is kept of a token (never its secret).

    Attributes:
        id: its public id (the part of the token before its secret).
        scopes: what it may do (`errands.web.auth`).
        created_at: when it was created (Unix seconds).
        expires_at: when it stops working (Unix seconds; None: never).
        note: what it is for, as its creator said.
        digest: the SHA-256 of its secret, hex.
    """

    id: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None = None
    note: str = ""
    digest: str = ""

    def expired(self, now: float) -> bool:
        """True once the token's expiry has passed."""
        return self.expires_at is not None and now >= self.expires_at


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(_PREFIX):
        return None
    token_id, _, secret = token[len(_PREFIX) :].partition("_")
    if not token_id or not secret:
        return None
    return token_id, secret


class TokenStore:
    """The tokens of one app's namespace, in the Redis hash ``<namespace>:{web}:tokens``."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._key = f"{app.namespace}:{{web}}:tokens"
        self._decoder = msgspec.json.Decoder(TokenInfo)

    async def create(
        self, scopes: Sequence[str], *, expires_in_s: float | None = None, note: str = ""
    ) -> tuple[str, TokenInfo]:
        """A new token with `scopes`: the token itself (shown once) and what is kept of it."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        info = TokenInfo(
            id=token_id,
            scopes=tuple(scopes),
            created_at=now,
            expires_at=None if expires_in_s is None else now + expires_in_s,
            note=note,
            digest=_digest(secret),
        )
        await self._client().hset(self._key, token_id, msgspec.json.encode(info))
        return f"{_PREFIX}{token_id}_{secret}", info

    async def verify(self, token: str) -> TokenInfo | None:
        """The record of `token` when it is known, its secret matches and it has not expired."""
        parts = _split(token)
        if parts is None:
            return None
        token_id, secret = parts
        raw = await self._client().hget(self._key, token_id)
        if raw is None:
            return None
        info = self._decoder.decode(raw)
        if not hmac.compare_digest(info.digest, _digest(secret)):
            return None
        if info.expired(time.time()):
            return None
        return info

    async def list(self) -> list[TokenInfo]:
        """Every token kept, expired ones included, oldest first."""
        raw = await self._client().hgetall(self._key)
        infos = [self._decoder.decode(value) for value in raw.values()]
        return sorted(infos, key=lambda info: info.created_at)

    async def revoke(self, token_id: str) -> bool:
        """Forget the token `token_id`; False when there was none."""
        return bool(await self._client().hdel(self._key, token_id))

    def _client(self) -> aredis.Redis:
        from errands.broker.redis import RedisBroker  # noqa: PLC0415 - web extra only

        broker = self._app.broker
        if not isinstance(broker, RedisBroker):
            raise TypeError("tokens are kept in Redis: give the app a redis:// broker")
        return broker.aclient


def token_store(app: App) -> TokenStore:
    """The token store of `app`'s namespace."""
    return TokenStore(app)
