"""Token management over HTTP (scope ``admin``), and ``GET /v1/whoami`` for any valid token.

``POST /v1/tokens`` creates a token and shows it once, in its reply; ``GET /v1/tokens`` lists
them (never a secret or digest); ``DELETE /v1/tokens/{id}`` revokes one at once, for every API
process. The documents are those of ``errands token list --json`` (`token_document`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from errands.errors import BrokerError, BrokerFull, ConfigurationError
from errands.web.auth import (
    ADMIN,
    AUTH_RESPONSES,
    Principal,
    Problem,
    authenticated,
    check_scopes,
    require,
)
from errands.web.context import WebContext, web_context
from errands.web.tokens import TokenInfo, TokenLimitReached, token_document

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["CreatedToken", "NewToken", "TokenList", "TokenModel", "routes"]

T = TypeVar("T")

log = logging.getLogger("errands.web")

# The longest expiry a token may be given over HTTP: ten years, in seconds.
_MAX_EXPIRY_S = 10 * 366 * 86400.0


class TokenModel(BaseModel):
    """A token as the API shows it: what it may do and its life, never its secret."""

    id: str = Field(description="Its public id (the part of the token before the secret).")
    scopes: list[str]
    state: Literal["active", "expired", "revoked"]
    created_at: str = Field(description="ISO 8601, UTC.")
    expires_at: str | None = Field(description="ISO 8601, UTC; null: never.")
    last_used_at: str | None = Field(description="ISO 8601, UTC, to the minute; null: never.")
    revoked_at: str | None = Field(description="ISO 8601, UTC; null: not revoked.")
    note: str


class CreatedToken(TokenModel):
    """A new token: its record, and the token itself, shown this once and never again."""

    token: str = Field(description="The bearer token: keep it now, it is not shown again.")


class TokenList(BaseModel):
    """Every token kept (revoked and expired ones too, for a week), oldest first."""

    tokens: list[TokenModel]


class NewToken(BaseModel):
    """What a new token may do, for how long, and what it is for."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Annotated[str, Field(max_length=200)]] = Field(
        min_length=1,
        max_length=64,
        description="enqueue:<task>, enqueue:*, read, read:payloads, operate or admin.",
    )
    expires_in_s: float | None = Field(
        default=None, gt=0, le=_MAX_EXPIRY_S, description="Seconds from now; null: never."
    )
    note: str = Field(default="", max_length=500, description="What the token is for.")


def _model(info: TokenInfo) -> TokenModel:
    return TokenModel.model_validate(token_document(info, time.time()))


async def _redis(step: Awaitable[T]) -> T:
    """`step`'s result; 503 (not 500) when Redis cannot be reached or is full."""
    try:
        return await step
    except BrokerFull:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the tokens cannot be changed now: Redis is full (maxmemory); free memory, retry",
            headers={"Retry-After": "5"},
        ) from None
    except BrokerError as error:
        log.warning("cannot read or change the tokens: %s", error)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the tokens cannot be read or changed now: the API server cannot reach its Redis "
            "(its log says why); retry later",
            headers={"Retry-After": "5"},
        ) from None


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No token has this id."}
}
_CREATE: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not JSON."},
    409: {"model": Problem, "description": "The most tokens are kept already."},
}
TokenId = Annotated[str, Path(max_length=64, description="The token's id.")]
Web = Annotated[WebContext, Depends(web_context)]
Admin = Annotated[Principal, Depends(require(ADMIN))]


def routes(app: App) -> APIRouter:
    """The token routes for `app`."""
    router = APIRouter(prefix="/v1", tags=["tokens"], responses=AUTH_RESPONSES)

    @router.get("/whoami")
    async def whoami(principal: Annotated[Principal, Depends(authenticated)]) -> TokenModel:
        """The token this request carries: its id, scopes and expiry (any valid token)."""
        return _model(principal.token)

    @router.get("/tokens")
    async def list_tokens(web: Web, _: Admin) -> TokenList:
        """Every token kept, oldest first; revoked and expired ones stay listed for a week."""
        infos = await _redis(web.tokens.list())
        return TokenList(tokens=[_model(info) for info in infos])

    @router.post("/tokens", status_code=status.HTTP_201_CREATED, responses=_CREATE)
    async def create_token(body: NewToken, response: Response, web: Web, _: Admin) -> CreatedToken:
        """Create a token; the reply holds the token itself, shown this once and never again.

        An ``enqueue:<task>`` scope must name a task of the app.
        """
        try:
            scopes = check_scopes(body.scopes, app.tasks)
        except ConfigurationError as refused:
            problem = {"loc": ["body", "scopes"], "msg": str(refused), "type": "value_error"}
            raise HTTPException(422, [problem]) from None
        created = web.tokens.create(scopes, expires_in_s=body.expires_in_s, note=body.note)
        try:
            token, info = await _redis(created)
        except TokenLimitReached as full:
            raise HTTPException(status.HTTP_409_CONFLICT, str(full)) from None
        response.headers["Location"] = f"/v1/tokens/{info.id}"
        return CreatedToken(token=token, **_model(info).model_dump())

    @router.get("/tokens/{token_id}", responses=_NOT_FOUND)
    async def get_token(token_id: TokenId, web: Web, _: Admin) -> TokenModel:
        """One token, by id."""
        info = await _redis(web.tokens.get(token_id))
        if info is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token has the id {token_id!r}")
        return _model(info)

    @router.delete("/tokens/{token_id}", responses=_NOT_FOUND)
    async def revoke_token(token_id: TokenId, web: Web, _: Admin) -> TokenModel:
        """Revoke a token, at once for every API process; revoking it again changes nothing."""
        if not await _redis(web.tokens.revoke(token_id)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token has the id {token_id!r}")
        info = await _redis(web.tokens.get(token_id))
        if info is None:  # forgotten between the two calls: its week was up
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token has the id {token_id!r}")
        return _model(info)

    return router
