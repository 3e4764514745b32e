"""Errors as JSON replies: ``{"detail": "..."}`` with the status that says whose move it is.

Redis that cannot serve now (unreachable, loading, read-only, full) is 503 with what to do;
an errands error about the request is 404 or 422; anything else is 500 with no traceback in
the reply (it goes to the server's log). A 422 lists its problems under ``detail``, each with
the JSON path of the bad value (`errands.web.schemas.Problem`), whichever check found it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis import exceptions as rex
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from errands.errors import (
    ArgumentError,
    BrokerError,
    BrokerFull,
    BrokerUnavailable,
    ConfigurationError,
    ErrandsError,
    JobNotFound,
    ScheduleNotFound,
    TaskNotFound,
)
from errands.web.schemas import Problem

if TYPE_CHECKING:
    from errands.web.context import WebContext

__all__ = [
    "DETAIL_SCHEMA",
    "PROBLEMS_SCHEMA",
    "PROTECTED",
    "UNAVAILABLE_RETRY_S",
    "ApiProblems",
    "install",
    "json_reply",
    "problems_reply",
    "reply_for",
    "responses",
]

log = logging.getLogger("errands.web")

_encoder = msgspec.json.Encoder()

#: The schema of every error reply but 422.
DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "properties": {"detail": {"type": "string", "description": "what went wrong, what to do"}},
    "required": ["detail"],
}
#: The schema of a 422 reply: each problem with its path.
PROBLEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problems",
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "title": "Problem",
                "properties": {
                    "path": {"type": "string", "description": "JSON path of the bad value"},
                    "message": {"type": "string"},
                },
                "required": ["path", "message"],
            },
        }
    },
    "required": ["detail"],
}

#: Seconds a 503 asks the caller to wait (Retry-After): a failover or a restart takes seconds.
UNAVAILABLE_RETRY_S = 5

#: What a route that needs a token can always answer (with what it lists itself).
PROTECTED = (401, 403, 422, 503)

_WHY = {
    400: "The body is not JSON.",
    401: "No valid bearer token.",
    403: "The token lacks the scope.",
    404: "Not found.",
    409: "The request conflicts with the current state (the job already ended).",
    413: "The body is over the server's limit.",
    422: "The request is not valid: each problem with its path.",
    429: "Over a budget: wait for Retry-After seconds.",
    503: "Redis cannot serve now; retry later.",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error `codes` a route can answer with."""
    return {
        code: {
            "description": _WHY.get(code, "Error."),
            "content": {
                "application/json": {"schema": PROBLEMS_SCHEMA if code == 422 else DETAIL_SCHEMA}
            },
        }
        for code in codes
    }


class ApiProblems(Exception):
    """Raise in a route to answer 422 with `problems`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


def json_reply(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`document` encoded by msgspec as a JSON reply."""
    return Response(_encoder.encode(document), status, headers, media_type="application/json")


def problems_reply(problems: Sequence[Problem]) -> Response:
    """The 422 reply listing `problems`."""
    return json_reply({"detail": problems}, 422)


def _detail(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return json_reply({"detail": text}, status, headers)


def _unavailable(error: BrokerUnavailable) -> Response:
    what = "Redis is full (maxmemory)" if isinstance(error, BrokerFull) else "Redis cannot serve"
    return _detail(503, f"{what}: {error}; retry later", {"Retry-After": str(UNAVAILABLE_RETRY_S)})


def _errands_error(error: ErrandsError) -> Response:
    if isinstance(error, BrokerUnavailable):
        return _unavailable(error)
    if isinstance(error, BrokerError):
        return _detail(503, f"Redis refused the call: {error}")
    if isinstance(error, (TaskNotFound, JobNotFound, ScheduleNotFound)):
        return _detail(404, str(error))
    if isinstance(error, (ArgumentError, ConfigurationError)):
        return problems_reply([Problem("$", str(error))])
    log.error("request failed: %s", error, exc_info=error)
    return _detail(500, f"{type(error).__name__}: {error}")


def _redis_error(request: Request, error: rex.RedisError) -> Response:
    from errands.broker.redis.faults import translate  # noqa: PLC0415 - Redis brokers only

    web: WebContext = request.app.state.errands
    url = str(getattr(web.app.broker, "url", ""))
    return _errands_error(translate(error, url))


def _problems_of(items: Sequence[Any]) -> list[Problem]:
    """FastAPI's validation errors (``loc``, ``msg``) as problems with their JSON paths."""
    problems = []
    for item in items:
        where = [str(part) for part in item.get("loc", ())]
        if where and where[0] == "body":
            path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in where[1:])
        else:
            path = "$." + ".".join(where)
        problems.append(Problem(path, str(item.get("msg", "not valid"))))
    return problems


def _validation(error: RequestValidationError) -> Response:
    return problems_reply(_problems_of(error.errors()))


def _http_error(error: StarletteHTTPException) -> Response:
    """A route's own refusal; a 422 in the one shape every 422 has (problems with paths)."""
    headers = dict(error.headers) if error.headers else None
    if error.status_code in (204, 304):
        return Response(status_code=error.status_code, headers=headers)
    if error.status_code != 422:
        return json_reply({"detail": error.detail}, error.status_code, headers)
    detail: Any = error.detail
    if isinstance(detail, list) and all(isinstance(item, dict) for item in detail):
        return problems_reply(_problems_of(detail))
    return problems_reply([Problem("$", str(detail))])


async def reply_for(request: Request, error: Exception) -> Response:
    """The JSON reply for `error` raised by a route: what the handlers `install` sets up give.

    For code that answers outside FastAPI's routing (`errands.web.fast_enqueue`).
    """
    if isinstance(error, ApiProblems):
        return problems_reply(error.problems)
    if isinstance(error, StarletteHTTPException):
        return _http_error(error)
    if isinstance(error, RequestValidationError):
        return _validation(error)
    if isinstance(error, ErrandsError):
        return _errands_error(error)
    if isinstance(error, rex.RedisError):
        return _redis_error(request, error)
    log.error("request %s %s failed", request.method, request.url.path, exc_info=error)
    return _detail(500, f"internal error ({type(error).__name__}): see the server's log")


def install(api: FastAPI) -> None:
    """Register the handlers that turn errors into JSON replies on `api`."""

    async def on_problems(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiProblems)
        return problems_reply(error.problems)

    async def on_errands(request: Request, error: Exception) -> Response:
        assert isinstance(error, ErrandsError)
        return _errands_error(error)

    async def on_redis(request: Request, error: Exception) -> Response:
        assert isinstance(error, rex.RedisError)
        return _redis_error(request, error)

    async def on_validation(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return _validation(error)

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        return _http_error(error)

    async def on_anything(request: Request, error: Exception) -> Response:
        # Starlette logs the traceback; the reply does not carry it.
        return _detail(500, f"internal error ({type(error).__name__}): see the server's log")

    api.add_exception_handler(Exception, on_anything)
    api.add_exception_handler(ApiProblems, on_problems)
    api.add_exception_handler(ErrandsError, on_errands)
    api.add_exception_handler(rex.RedisError, on_redis)
    api.add_exception_handler(RequestValidationError, on_validation)
    api.add_exception_handler(StarletteHTTPException, on_http)
