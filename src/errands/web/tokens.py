"""Bearer tokens: created once, kept in Redis only as a hash, checked in constant time.

A token reads ``erd_<id>_<secret>``: the id finds its record, the secret is checked against
the SHA-256 kept there with `hmac.compare_digest`. The secret itself is never stored.

Every check reads Redis (one ``FCALL_RO``): nothing is cached, so a revoked token is refused
by every API process from the next request on. Expiry is judged by the Redis server's clock,
so all API processes agree on the moment a token stops working. A client address that sent
`BLOCK_AFTER` bad tokens within `FAILURE_WINDOW_S` is refused (`TooManyFailures`) until that
window, which starts at its first failure, has passed; the count lives in Redis, shared by every
API process. A revoked or expired token stays listed for `KEEP_S`, then its record is deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import msgspec

from errands.cli_output import iso_json
from errands.errors import BrokerError, ConfigurationError, ErrandsError

if TYPE_CHECKING:
    from errands.app import App
    from errands.broker.redis.tokens import Lookup, RedisTokens

__all__ = [
    "BLOCK_AFTER",
    "CACHE_S",
    "FAILURE_WINDOW_S",
    "KEEP_S",
    "MAX_TOKENS",
    "TokenInfo",
    "TokenLimitReached",
    "TokenRefused",
    "TokenStore",
    "TooManyFailures",
    "token_document",
    "token_store",
]

log = logging.getLogger("errands.web")

#: Bad tokens from one client address, within `FAILURE_WINDOW_S`, after which it is refused.
BLOCK_AFTER = 10
#: The window of `BLOCK_AFTER`, from the address's first failure (seconds).
FAILURE_WINDOW_S = 60.0
#: How long a revoked or expired token stays listed before its record is deleted (seconds).
KEEP_S = 7 * 86400.0
#: The most tokens kept (revoked and expired ones too, until forgotten): a bound on memory.
MAX_TOKENS = 10_000
#: How long an API process takes a token it found good again without asking Redis (seconds):
#: the bound on how late a revoke reaches another process, against one Redis round trip saved
#: on every request.
CACHE_S = 1.0
# The most (token, address) pairs remembered; more are a flood, not clients.
_CACHE_MOST = 10_000
# Last use is noted at most this often per token: a write per request would cost every request.
_TOUCH_EVERY_MS = 60_000

_PREFIX = "erd_"
_TOKEN = re.compile(r"erd_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
_DIGEST = re.compile(r"[0-9a-f]{64}")

State = Literal["active", "expired", "revoked"]


class TokenInfo(msgspec.Struct, frozen=True):
    """What is known of a token (never its secret, nor the digest of it).

    Attributes:
        id: its public id (the part of the token before its secret).
        scopes: what it may do (`errands.web.auth`).
        created_at: when it was created (Unix seconds).
        expires_at: when it stops working (Unix seconds; None: never).
        note: what it is for, as its creator said.
        revoked_at: when it was revoked (Unix seconds; None: it was not).
        last_used_at: when it last let a request in (Unix seconds, to the minute; None: never).
    """

    id: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None = None
    note: str = ""
    revoked_at: float | None = None
    last_used_at: float | None = None

    def expired(self, now: float) -> bool:
        """True once the token's expiry has passed."""
        return self.expires_at is not None and now >= self.expires_at

    def state(self, now: float) -> State:
        """``revoked``, ``expired`` or ``active`` at `now` (Unix seconds)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(now) else "active"


class _Record(msgspec.Struct, frozen=True):
    """A token as Redis keeps it: its description and the SHA-256 of its secret, hex."""

    id: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None
    note: str
    digest: str


class TokenRefused(ErrandsError):
    """A token that lets nothing in: malformed, unknown, wrong, revoked, expired or corrupt.

    Attributes:
        reason: which of those (``malformed``, ``unknown``, ``wrong secret``, ``revoked``,
            ``expired``, ``corrupt``).
        counted: it counted as a failed attempt of the client address (all but ``corrupt``,
            which is no fault of the client's).
    """

    def __init__(self, reason: str, *, counted: bool = True) -> None:
        super().__init__(f"the token was refused: {reason}")
        self.reason = reason
        self.counted = counted


class TokenLimitReached(ErrandsError):
    """The most tokens are kept already: no new one until some are revoked and forgotten."""

    def __init__(self, most: int) -> None:
        super().__init__(
            f"{most} tokens are kept already, the most there may be: revoke those no longer "
            "used (errands token list shows them; revoked ones are forgotten after a week)"
        )


class TooManyFailures(ErrandsError):
    """The client address sent too many bad tokens lately: it is refused for a while.

    Attributes:
        retry_after_s: seconds until its window ends.
    """

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many failed token attempts from this address: retry in {retry_after_s:.0f}s"
        )
        self.retry_after_s = retry_after_s


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    found = _TOKEN.fullmatch(token)
    return (found[1], found[2]) if found else None


_decoder = msgspec.json.Decoder(_Record)


def _decode(token_id: str, raw: bytes) -> _Record | None:
    """The record `raw`, or None (logged) when it is not one of ours."""
    try:
        record = _decoder.decode(raw)
    except msgspec.DecodeError as error:
        problem = str(error)
    else:
        if record.id == token_id and _DIGEST.fullmatch(record.digest):
            return record
        problem = "its id or digest is not a token's"
    log.error(
        "the record of token %s does not decode (%s): it lets nothing in; revoke it "
        "(errands token revoke APP %s) and create another",
        token_id,
        problem,
        token_id,
    )
    return None


def _info(record: _Record, revoked_ms: int | None, used_ms: int | None) -> TokenInfo:
    return TokenInfo(
        id=record.id,
        scopes=record.scopes,
        created_at=record.created_at,
        expires_at=record.expires_at,
        note=record.note,
        revoked_at=None if revoked_ms is None else revoked_ms / 1000,
        last_used_at=None if used_ms is None else used_ms / 1000,
    )


class TokenStore:
    """The tokens of one app's namespace, in Redis (`errands.broker.redis.tokens`).

    Args:
        app: the app whose broker keeps them (a redis:// one).
        block_after: bad tokens within `window_s` after which a client address is refused.
        window_s: the window of `block_after`, from the first failure (seconds).
        keep_s: how long a revoked or expired token stays listed (seconds).
        max_tokens: the most tokens kept (`MAX_TOKENS`).
        cache_s: how long this process takes a token it found good again without asking Redis
            (seconds; 0: ask every time). It is the longest a revoke, an expiry or the block
            of an address takes to reach a request to another API process; the process that
            revokes forgets the token at once.
    """

    def __init__(
        self,
        app: App,
        *,
        block_after: int = BLOCK_AFTER,
        window_s: float = FAILURE_WINDOW_S,
        keep_s: float = KEEP_S,
        max_tokens: int = MAX_TOKENS,
        cache_s: float = CACHE_S,
    ) -> None:
        if block_after < 1 or window_s <= 0 or keep_s <= 0 or max_tokens < 1:
            raise ConfigurationError(
                "block_after, window_s, keep_s and max_tokens must be positive"
            )
        if cache_s < 0:
            raise ConfigurationError(f"cache_s must be 0 or more, got {cache_s}")
        self._app = app
        self._store: RedisTokens | None = None
        self.block_after = block_after
        self.window_s = window_s
        self.keep_s = keep_s
        self.max_tokens = max_tokens
        self.cache_s = cache_s
        # (token, client address) -> (monotonic time it is good until, its record).
        self._good: dict[tuple[str, str], tuple[float, TokenInfo]] = {}

    def _tokens(self) -> RedisTokens:
        if self._store is None:
            from errands.broker.redis import RedisBroker  # noqa: PLC0415 - web extra only
            from errands.broker.redis.tokens import RedisTokens  # noqa: PLC0415

            broker = self._app.broker
            if not isinstance(broker, RedisBroker):
                raise ConfigurationError("tokens are kept in Redis: give the app a redis:// broker")
            self._store = RedisTokens(broker)
        return self._store

    async def create(
        self, scopes: Sequence[str], *, expires_in_s: float | None = None, note: str = ""
    ) -> tuple[str, TokenInfo]:
        """A new token with `scopes`: the token itself (shown once) and what is kept of it.

        The scopes are taken as given: check them first (`errands.web.auth.check_scopes`).

        Args:
            scopes: what it may do.
            expires_in_s: it stops working this many seconds from now (None: never).
            note: what it is for.

        Raises:
            TokenLimitReached: `max_tokens` are kept already.
        """
        if expires_in_s is not None and expires_in_s <= 0:
            raise ConfigurationError(f"a token must expire in the future, not in {expires_in_s}s")
        while True:
            token_id = secrets.token_hex(6)
            secret = secrets.token_urlsafe(32)
            now = time.time()
            expires_at = None if expires_in_s is None else now + expires_in_s
            record = _Record(token_id, tuple(scopes), now, expires_at, note, _digest(secret))
            forget = None if expires_at is None else int((expires_at + self.keep_s) * 1000)
            stored = await self._tokens().create(
                token_id, msgspec.json.encode(record), forget, self.max_tokens
            )
            if stored < 0:
                raise TokenLimitReached(self.max_tokens)
            if stored:
                return f"{_PREFIX}{token_id}_{secret}", _info(record, None, None)
            # 48 random bits collided with a kept token's id: draw again.

    async def check(self, token: str, client: str) -> TokenInfo:
        """The token sent from address `client`, when it is valid and the address not blocked.

        Raises:
            TooManyFailures: the address sent too many bad tokens lately (good ones too are
                refused until its window passes).
            TokenRefused: the token lets nothing in (counted as a failure of the address).
            BrokerError: Redis could not be asked (nothing is let in).
        """
        key = (token, client)
        cached = self._good.get(key)
        if cached is not None:
            if time.monotonic() < cached[0]:
                return cached[1]
            del self._good[key]
        store = self._tokens()
        parts = _split(token)
        found = await store.lookup(parts[0] if parts else "", client, self.block_after)
        if found.blocked_ms > 0:
            raise TooManyFailures(found.blocked_ms / 1000)
        try:
            info = self._judge(parts, found)
        except TokenRefused as refused:
            if refused.counted:
                count, left_ms = await store.fail(client, int(self.window_s * 1000))
                if count == self.block_after:  # once per window, not at every refusal
                    log.warning(
                        "client %s sent %d bad tokens within %gs: refused for %.0fs",
                        client or "(unknown)",
                        count,
                        self.window_s,
                        left_ms / 1000,
                    )
            raise
        if found.used_ms is None or found.now_ms - found.used_ms >= _TOUCH_EVERY_MS:
            await self._touch(info.id)
        self._remember(key, info, found.now_ms / 1000)
        return info

    def _remember(self, key: tuple[str, str], info: TokenInfo, now: float) -> None:
        good_for_s = self.cache_s
        if info.expires_at is not None:
            good_for_s = min(good_for_s, info.expires_at - now)
        if good_for_s <= 0:
            return
        if len(self._good) >= _CACHE_MOST:
            self._good.clear()  # a flood of distinct tokens or addresses: start afresh
        self._good[key] = (time.monotonic() + good_for_s, info)

    async def _touch(self, token_id: str) -> None:
        try:
            await self._tokens().touch(token_id)
        except BrokerError as error:
            # The token was checked: a lost note of its last use must not refuse the request.
            log.warning("could not note the use of token %s: %s", token_id, error)

    @staticmethod
    def _judge(parts: tuple[str, str] | None, found: Lookup) -> TokenInfo:
        """The token's record when `found` lets it in, else `TokenRefused` with the reason."""
        if parts is None:
            raise TokenRefused("malformed")
        token_id, secret = parts
        if found.record is None:
            raise TokenRefused("unknown")
        record = _decode(token_id, found.record)
        if record is None:
            raise TokenRefused("corrupt", counted=False)
        if not hmac.compare_digest(record.digest.encode(), _digest(secret).encode()):
            raise TokenRefused("wrong secret")
        info = _info(record, found.revoked_ms, found.used_ms)
        if info.revoked_at is not None:
            raise TokenRefused("revoked")
        if info.expired(found.now_ms / 1000):
            raise TokenRefused("expired")
        return info

    async def verify(self, token: str) -> TokenInfo | None:
        """The record of `token` when it is known, its secret matches and it is still valid.

        Neither counts a failure nor looks at the caller's address: servers use `check`.
        """
        parts = _split(token)
        found = await self._tokens().lookup(parts[0] if parts else "", "", self.block_after)
        try:
            return self._judge(parts, found)
        except TokenRefused:
            return None

    async def get(self, token_id: str) -> TokenInfo | None:
        """What is kept of the token `token_id`; None when there is none (or it is corrupt)."""
        found = await self._tokens().lookup(token_id, "", self.block_after)
        if found.record is None:
            return None
        record = _decode(token_id, found.record)
        return None if record is None else _info(record, found.revoked_ms, found.used_ms)

    async def list(self) -> list[TokenInfo]:
        """Every token kept, revoked and expired ones included, oldest first.

        A record that does not decode is left out (and logged); `revoke` still takes its id.
        """
        stored = await self._tokens().read_all()
        infos = []
        for token_id, raw in stored.records.items():
            record = _decode(token_id, raw)
            if record is not None:
                infos.append(
                    _info(record, stored.revoked_ms.get(token_id), stored.used_ms.get(token_id))
                )
        return sorted(infos, key=lambda info: (info.created_at, info.id))

    async def revoke(self, token_id: str) -> bool:
        """Revoke the token `token_id` (at once, for every API process); False when there is none.

        Revoking a revoked token changes nothing and is True.
        """
        for key in [key for key, (_, info) in self._good.items() if info.id == token_id]:
            del self._good[key]
        code, _ = await self._tokens().revoke(token_id, int(self.keep_s * 1000))
        return code != 0


def token_document(info: TokenInfo, now: float) -> dict[str, object]:
    """A token as ``errands token list --json`` and ``GET /v1/tokens`` show it (no secret).

    Times are ISO 8601 in UTC; `state` is judged at `now` (Unix seconds).
    """
    return {
        "id": info.id,
        "scopes": list(info.scopes),
        "state": info.state(now),
        "created_at": iso_json(info.created_at),
        "expires_at": iso_json(info.expires_at),
        "last_used_at": iso_json(info.last_used_at),
        "revoked_at": iso_json(info.revoked_at),
        "note": info.note,
    }


def token_store(app: App, cache_s: float = CACHE_S) -> TokenStore:
    """The token store of `app`'s namespace (`cache_s`: see `TokenStore`)."""
    return TokenStore(app, cache_s=cache_s)
