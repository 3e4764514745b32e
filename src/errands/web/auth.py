"""Who a request is, and what it may do: bearer tokens with scopes.

Scopes: ``enqueue:<task>`` or ``enqueue:*`` (publish only), ``read``, ``read:payloads``
(arguments and results, hidden without it), ``operate`` (cancel, pause, retry dead jobs) and
``admin`` (tokens, purge; everything else too). A route declares what it needs with
``Depends(require(...))``; a request without a valid token gets 401, one without the scope 403,
one from an address that sent too many bad tokens lately 429 (`errands.web.tokens`), and one
that cannot be checked because Redis does not answer 503: never a request let in unchecked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from errands.errors import BrokerError, ConfigurationError
from errands.web.context import WebContext, web_context
from errands.web.errors import UNAVAILABLE_RETRY_S
from errands.web.tokens import TokenInfo, TokenRefused, TooManyFailures

__all__ = [
    "ADMIN",
    "AUTH_RESPONSES",
    "OPERATE",
    "READ",
    "READ_PAYLOADS",
    "SCOPES",
    "Principal",
    "Problem",
    "authenticate",
    "authenticate_token",
    "authenticated",
    "check_scopes",
    "enqueue_scope",
    "require",
    "valid_scope",
]

log = logging.getLogger("errands.web")

READ = "read"
READ_PAYLOADS = "read:payloads"
OPERATE = "operate"
ADMIN = "admin"
#: Every scope but the per-task ``enqueue:<task>`` ones.
SCOPES = ("enqueue:*", READ, READ_PAYLOADS, OPERATE, ADMIN)
_ENQUEUE = "enqueue:"


class Problem(BaseModel):
    """An error reply: what went wrong and what to do about it."""

    detail: str


#: The refusals every route behind a token may answer with, for its OpenAPI ``responses``.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No token, or one that is not valid."},
    403: {"model": Problem, "description": "The token lacks the scope the route needs."},
    429: {"model": Problem, "description": "Too many bad tokens from this address lately."},
    503: {"model": Problem, "description": "Redis cannot be reached to check the token."},
}


def enqueue_scope(task: str) -> str:
    """The scope that lets a token enqueue `task`."""
    return f"{_ENQUEUE}{task}"


def valid_scope(scope: str) -> bool:
    """True for a scope this server knows (a named ``enqueue:<task>`` included)."""
    return scope in SCOPES or (scope.startswith(_ENQUEUE) and len(scope) > len(_ENQUEUE))


def check_scopes(scopes: Iterable[str], tasks: Collection[str]) -> tuple[str, ...]:
    """`scopes` without repeats, once each is one a token may hold for an app with `tasks`.

    Raises:
        ConfigurationError: no scope, an unknown one, or ``enqueue:<task>`` for a task the app
            does not register; the message names what is valid.
    """
    wanted = tuple(dict.fromkeys(scope.strip() for scope in scopes))
    if not wanted:
        raise ConfigurationError(f"give a token at least one scope: {_valid_scopes()}")
    for scope in wanted:
        if not valid_scope(scope):
            raise ConfigurationError(f"unknown scope {scope!r}: {_valid_scopes()}")
        task = scope.removeprefix(_ENQUEUE)
        if scope.startswith(_ENQUEUE) and task != "*" and task not in tasks:
            known = ", ".join(sorted(tasks)) or "none"
            raise ConfigurationError(
                f"{scope!r} names no task of the app (its tasks: {known}): check the name, "
                "or use enqueue:* for every task"
            )
    return wanted


def _valid_scopes() -> str:
    return "the scopes are enqueue:<task>, " + ", ".join(SCOPES)


@dataclass(frozen=True)
class Principal:
    """The token a request carried.

    Attributes:
        token: what is kept of it.
    """

    token: TokenInfo

    def allows(self, scope: str) -> bool:
        """True when the token's scopes grant `scope`."""
        held = self.token.scopes
        if ADMIN in held or scope in held:
            return True
        return scope.startswith(_ENQUEUE) and "enqueue:*" in held


# Declares the bearer scheme in /openapi.json (the docs' Authorize button, and every protected
# operation's `security`); the header itself is read by `_bearer`, with our own refusals.
_SCHEME = HTTPBearer(
    bearerFormat="erd_<id>_<secret>",
    scheme_name="token",
    description="A token from `errands token create` or `POST /v1/tokens`.",
    auto_error=False,
)
_Documented = Annotated[HTTPAuthorizationCredentials | None, Security(_SCHEME)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _refused_detail(reason: str) -> str:
    """What a client is told of a refused token; whether an id exists is not said."""
    if reason == "malformed":
        return "the token is malformed (a token reads erd_<id>_<secret>): send it whole"
    if reason == "revoked":
        return "the token was revoked: ask an admin for another (errands token create)"
    if reason == "expired":
        return "the token expired: ask an admin for another (errands token create --expires)"
    if reason == "corrupt":
        return "the token's record cannot be read: ask an admin (the API server's log says more)"
    return "the token is unknown or wrong: check it, or create one with errands token create"


async def authenticate_token(web: WebContext, token: str, client: str) -> Principal:
    """The principal of `token`, sent from address `client`.

    The one check behind both the bearer header and the dashboard's session cookie.

    Raises:
        HTTPException: 401 for a token that is not valid, 429 (with Retry-After) for an address
            that sent too many bad tokens lately, 503 when Redis cannot be asked.
    """
    try:
        info = await web.tokens.check(token, client)
    except TooManyFailures as blocked:
        wait_s = max(1, math.ceil(blocked.retry_after_s))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many bad tokens from this address: every request is refused for {wait_s}s more",
            headers={"Retry-After": str(wait_s)},
        ) from None
    except TokenRefused as refused:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            _refused_detail(refused.reason),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    except ConfigurationError as error:
        # The app's broker keeps no tokens (not Redis): no token can be checked, ever.
        log.error("cannot check tokens: %s", error)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the API server cannot check tokens: {error}",
        ) from None
    except BrokerError as error:
        log.warning("cannot check a token from %s: %s", client or "(unknown)", error)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the token cannot be checked now: the API server cannot reach its Redis (its log "
            "says why); retry later",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_S)},
        ) from None
    return Principal(info)


async def authenticate(request: Request, web: WebContext) -> Principal:
    """The principal of `request`'s bearer token; 401 when it has none that is valid."""
    token = _bearer(request)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "no bearer token: send 'Authorization: Bearer <token>' (errands token create)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    client = request.client.host if request.client else ""
    return await authenticate_token(web, token, client)


async def authenticated(
    request: Request, web: Annotated[WebContext, Depends(web_context)], _: _Documented
) -> Principal:
    """A dependency: the request's principal, whatever its scopes (else 401)."""
    return await authenticate(request, web)


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the request's principal, when its token grants `scope` (else 401/403)."""

    async def dependency(
        request: Request, web: Annotated[WebContext, Depends(web_context)], _: _Documented
    ) -> Principal:
        principal = await authenticate(request, web)
        if not principal.allows(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the token lacks the scope {scope!r}: create one with --scope {scope}",
            )
        return principal

    return dependency
