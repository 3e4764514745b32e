"""The dashboard's session: a token kept in a cookie, its CSRF form token, the Origin check.

The session cookie holds the token the operator logged in with (``HttpOnly``, so no script
reads it; ``SameSite=Strict``, so no other site's page sends it; ``Secure`` unless the server
says otherwise). Each request checks it again with `authenticate_token`, the check behind the
bearer header: a revoked or expired token ends the session at once.

Every POST carries a form field ``csrf``: the HMAC-SHA256 of a fixed label keyed by the session
token, compared in constant time. Only a page served to this session knows it (the cookie is
unreadable to scripts), and every API process computes the same one without shared state. A
POST whose ``Origin`` header names another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, HTTPException, Request, status

from errands.web.auth import READ, Principal, authenticate_token
from errands.web.context import WebContext, web_context

__all__ = [
    "COOKIE",
    "Current",
    "LoginRequired",
    "Posted",
    "Session",
    "csrf_token",
    "form_of",
    "local_path",
    "require_scope",
    "same_origin",
    "session",
    "session_for_post",
]

#: The name of the session cookie.
COOKIE = "errands_session"
#: The largest form body a dashboard POST reads (a login token, a note, a few ids).
MAX_FORM_BYTES = 16 * 1024
_CSRF_LABEL = b"errands dashboard csrf v1"


class LoginRequired(Exception):
    """The request has no valid session: the dashboard answers with a redirect to /login.

    Args:
        next_path: where to go back to after logging in.
        reason: what the login page says (why the session ended), if anything.
    """

    def __init__(self, next_path: str, reason: str = "") -> None:
        super().__init__(reason or "log in")
        self.next_path = next_path
        self.reason = reason


@dataclass(frozen=True)
class Session:
    """A request's logged-in operator.

    Attributes:
        principal: the token's principal (what its scopes allow).
        csrf: the form token every POST of this session carries.
    """

    principal: Principal

    csrf: str

    def allows(self, scope: str) -> bool:
        """True when the session's token grants `scope`."""
        return self.principal.allows(scope)


def csrf_token(token: str) -> str:
    """The CSRF form token of the session whose token is `token` (hex HMAC-SHA256)."""
    return hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def local_path(candidate: str | None, default: str = "/") -> str:
    """`candidate` when it is a path on this server (no scheme, no host), else `default`.

    Keeps the ``next`` of the login form from sending the operator to another site.
    """
    if not candidate or not candidate.startswith("/") or candidate.startswith("//"):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc or "\\" in candidate:
        return default
    return candidate


def same_origin(request: Request) -> bool:
    """False when the request's ``Origin`` header names a site other than this server.

    A request without one (an old browser, a script) passes: the CSRF token still guards it.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host and origin != "null"


async def form_of(request: Request) -> dict[str, str]:
    """The URL-encoded form of a POST (the first value of each field), at most 16 KiB.

    Raises:
        HTTPException: 413 for a bigger body.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def _principal(request: Request, web: WebContext) -> tuple[Principal, str]:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired(_here(request) if request.method == "GET" else "/")
    client = request.client.host if request.client else ""
    try:
        principal = await authenticate_token(web, token, client)
    except HTTPException as refused:
        if refused.status_code == status.HTTP_401_UNAUTHORIZED:
            raise LoginRequired(_here(request), str(refused.detail)) from None
        raise
    if not principal.allows(READ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the dashboard needs a token with the scope 'read': log in with one "
            "(errands token create APP --scope read)",
        )
    return principal, token


async def session(request: Request, web: Annotated[WebContext, Depends(web_context)]) -> Session:
    """A dependency: the request's session (else `LoginRequired`, a redirect to /login)."""
    principal, token = await _principal(request, web)
    return Session(principal, csrf_token(token))


async def session_for_post(
    request: Request, web: Annotated[WebContext, Depends(web_context)]
) -> tuple[Session, dict[str, str]]:
    """A dependency for a POST: its session and form, once its Origin and CSRF token pass.

    Raises:
        HTTPException: 403 for another site's Origin or a missing or wrong CSRF token.
    """
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the request came from another site")
    principal, token = await _principal(request, web)
    form = await form_of(request)
    expected = csrf_token(token)
    if not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "the form's CSRF token is missing or wrong: reload the page and try again",
        )
    return Session(principal, expected), form


def require_scope(current: Session, scope: str) -> None:
    """Refuse (403) an action the session's token does not grant."""
    if not current.allows(scope):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the token lacks the scope {scope!r}: log in with one that has it",
        )


#: A page's session (a FastAPI dependency: redirects to /login without one).
Current = Annotated[Session, Depends(session)]
#: A POST's session and its form, the CSRF token and the Origin checked.
Posted = Annotated[tuple[Session, dict[str, str]], Depends(session_for_post)]
