"""Rendering: the Jinja2 environment (autoescape on), and the dashboard's route class.

The route class turns what a page raises into a page: a redirect to /login, a 503 while Redis
is away, an error page.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any

import jinja2
from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from errands.cli_output import human_duration, iso
from errands.errors import BrokerUnavailable
from errands.web.dashboard.session import LoginRequired

__all__ = ["DashboardRoute", "page", "templates"]

_log = logging.getLogger("errands.web.dashboard")

_UNAVAILABLE = (BrokerUnavailable, RedisConnectionError, RedisTimeoutError, ConnectionError)


def _age(seconds: float | None) -> str:
    return "—" if seconds is None else human_duration(max(seconds, 0.0))


def _when(moment: float | dt.datetime | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return iso(moment)


def _ago(moment: float | None) -> str:
    if moment is None:
        return "—"
    return f"{human_duration(max(time.time() - moment, 0.0))} ago"


def _environment() -> jinja2.Environment:
    folder = resources.files("errands.web.dashboard") / "templates"
    loader = jinja2.FileSystemLoader(str(folder))
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = _age
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    return env


templates = _environment()


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """`template` rendered with `values` (and the request), as an HTML response."""
    body = templates.get_template(template).render(request=request, **values)
    return HTMLResponse(body, status_code=status_code, headers=_HEADERS)


# No page of the dashboard is framed, cached, or sniffed as another type; no script but ours.
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


def _error(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
    return page(request, "error.html", status_code, title=title, detail=detail, session=None)


class DashboardRoute(APIRoute):
    """A dashboard route: what its page raises becomes a page, never a traceback.

    No session: a redirect to /login. Redis unreachable: a 503 page that says so. An
    `HTTPException`: a page with its status and detail.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as needed:
                target = f"/login?next={_quote(needed.next_path)}"
                if needed.reason:
                    target += "&expired=1"
                return RedirectResponse(target, status_code=303)
            except HTTPException as refused:
                title = {403: "Not allowed", 404: "Not found", 429: "Slow down"}.get(
                    refused.status_code, "Cannot do that"
                )
                if refused.status_code == 503:
                    title = "Redis cannot be reached"
                response = _error(request, refused.status_code, title, str(refused.detail))
                for name, value in (refused.headers or {}).items():
                    response.headers[name] = value
                return response
            except _UNAVAILABLE as gone:
                _log.warning("dashboard: Redis cannot be reached: %s", gone)
                return _error(
                    request,
                    503,
                    "Redis cannot be reached",
                    "The dashboard cannot read the broker right now "
                    f"({type(gone).__name__}: {gone}). Check that Redis is up and that the "
                    "server's broker URL points at it, then reload this page.",
                )

        return guarded


def _quote(path: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415 - small, local

    return quote(path, safe="/")


def static_file(name: str) -> bytes:
    """The bytes of the dashboard's static file `name` (only the ones shipped)."""
    return (resources.files("errands.web.dashboard") / "static" / name).read_bytes()
