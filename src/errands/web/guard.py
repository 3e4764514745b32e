"""What every operator route shares: its scope check, and Redis failures as a clear 503.

A route that reads or changes a queue talks to Redis twice: the token check and its own
call. Either may find Redis unreachable, loading or read-only: that is 503 with what to do,
never a 500 with a traceback. Wrong input that errands refuses (a queue name it does not
allow, a page limit out of range) is 422 with errands' message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from redis import exceptions as redis_errors

from errands.errors import ArgumentError, BrokerUnavailable, ConfigurationError
from errands.web.auth import Principal, require
from errands.web.context import WebContext, web_context
from errands.web.ops_models import ErrorModel

__all__ = ["guarded", "redis_or_503", "responses"]

_WHY = {
    401: "No valid bearer token.",
    403: "The token lacks the scope this route needs.",
    404: "No such queue, job or schedule.",
    409: "The change does not apply (the item is not in that state).",
    422: "The request is not valid.",
    429: "Over the token's budget: wait for Retry-After seconds.",
    503: "Redis cannot serve now.",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The declared error replies of a route (401, 403, 422 and 503 always), for OpenAPI."""
    chosen = sorted({401, 403, 422, 503, *statuses})
    return {code: {"model": ErrorModel, "description": _WHY[code]} for code in chosen}


_TRANSIENT = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    OSError,
)


@contextmanager
def redis_or_503() -> Iterator[None]:
    """Turn Redis failures into 503 and errands' refusals of the input into 422."""
    try:
        yield
    except (BrokerUnavailable, *_TRANSIENT) as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"Redis cannot serve now ({error}): check that it runs and is reachable from the "
            "API server, then try again",
            headers={"Retry-After": "5"},
        ) from None
    except (ArgumentError, ConfigurationError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


def guarded(scope: str) -> Callable[..., Awaitable[Principal]]:
    """`errands.web.auth.require` for `scope`, with Redis failures of the token check as 503."""
    check = require(scope)

    async def dependency(
        request: Request, web: Annotated[WebContext, Depends(web_context)]
    ) -> Principal:
        with redis_or_503():
            return await check(request, web)

    return dependency
