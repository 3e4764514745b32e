"""Who a request is, and what it may do: bearer tokens with scopes.

Scopes: ``enqueue:<task>`` or ``enqueue:*`` (publish only), ``read``, ``read:payloads``
(arguments and results, hidden without it), ``operate`` (cancel, pause, retry dead jobs) and
``admin`` (tokens, purge; everything else too). A route declares what it needs with
``Depends(require(...))``; a request without a valid token gets 401, one without the scope 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from errands.web.context import WebContext, web_context
from errands.web.tokens import TokenInfo

__all__ = [
    "ADMIN",
    "OPERATE",
    "READ",
    "READ_PAYLOADS",
    "SCOPES",
    "Principal",
    "authenticate",
    "authenticate_token",
    "enqueue_scope",
    "require",
    "valid_scope",
]

READ = "read"
READ_PAYLOADS = "read:payloads"
OPERATE = "operate"
ADMIN = "admin"
#: Every scope but the per-task ``enqueue:<task>`` ones.
SCOPES = ("enqueue:*", READ, READ_PAYLOADS, OPERATE, ADMIN)


def enqueue_scope(task: str) -> str:
    """The scope that lets a token enqueue `task`."""
    return f"enqueue:{task}"


def valid_scope(scope: str) -> bool:
    """True for a scope this server knows (a named ``enqueue:<task>`` included)."""
    return scope in SCOPES or (scope.startswith("enqueue:") and len(scope) > len("enqueue:"))


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
        return scope.startswith("enqueue:") and "enqueue:*" in held


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def authenticate_token(web: WebContext, token: str, client: str) -> Principal:
    """The principal of `token`, sent from address `client`; 401 when it is not valid.

    The one check behind both the bearer header and the dashboard's session cookie.
    """
    info = await web.tokens.verify(token)
    if info is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the token is unknown, revoked or expired: create one with errands token create",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
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


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the request's principal, when its token grants `scope` (else 401/403)."""

    async def dependency(
        request: Request, web: Annotated[WebContext, Depends(web_context)]
    ) -> Principal:
        principal = await authenticate(request, web)
        if not principal.allows(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"the token lacks the scope {scope!r}: create one with --scope {scope}",
            )
        return principal

    return dependency
