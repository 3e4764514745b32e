"""The dashboard, at ``/`` of the API server: server-rendered pages on the inspector.

Log in with a token (the same tokens as the API); what a page shows and which buttons it has
follow the token's scopes. Pages: overview (``/``), a queue (``/queues/{name}``), a job
(``/jobs/{id}``), search (``/search``), dead jobs (``/dead``), schedules (``/schedules``);
live numbers by server-sent events (``/live/...``). None of it is in the OpenAPI document: it
is not the API. See docs/web/dashboard.md.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from errands.web.auth import READ, authenticate_token
from errands.web.context import WebContext, web_context
from errands.web.dashboard.dead import add_dead
from errands.web.dashboard.live import add_live
from errands.web.dashboard.pages import add_pages
from errands.web.dashboard.render import DashboardRoute, page, static_file
from errands.web.dashboard.schedules import add_schedules
from errands.web.dashboard.session import COOKIE, csrf_token, form_of, local_path, same_origin

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["routes"]

_STATIC = {"dash.css": "text/css; charset=utf-8", "dash.js": "text/javascript; charset=utf-8"}

Context = Annotated[WebContext, Depends(web_context)]


def routes(app: App) -> APIRouter:
    """The dashboard routes for `app`."""
    router = APIRouter(include_in_schema=False, route_class=DashboardRoute)
    _add_login(router)
    add_pages(router, app)
    add_dead(router, app)
    add_schedules(router, app)
    add_live(router, app)

    @router.get("/static/dash/{name}")
    async def static(name: str) -> Response:
        """The dashboard's stylesheet and script (no CDN, no build step)."""
        if name not in _STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            static_file(name),
            media_type=_STATIC[name],
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return router


def _add_login(router: APIRouter) -> None:
    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/", expired: str = "") -> HTMLResponse:  # noqa: A002 - the query's name
        """The login form: paste a token."""
        said = "the session ended: log in again" if expired else ""
        return page(request, "login.html", session=None, next=local_path(next), error=said)

    @router.post("/login")
    async def login(request: Request, web: Context) -> Response:
        """Check the token as the bearer header is checked; keep it in the session cookie."""
        if not same_origin(request):
            raise HTTPException(403, "the request came from another site")
        form = await form_of(request)
        token = form.get("token", "").strip()
        target = local_path(form.get("next"))
        client = request.client.host if request.client else ""
        try:
            principal = await authenticate_token(web, token, client)
        except HTTPException as refused:
            if refused.status_code not in (401, 429):
                raise
            return page(
                request,
                "login.html",
                refused.status_code,
                session=None,
                next=target,
                error=str(refused.detail),
            )
        if not principal.allows(READ):
            return page(
                request,
                "login.html",
                403,
                session=None,
                next=target,
                error="this token lacks the scope 'read' the dashboard needs",
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=web.settings.secure_cookies,
            path="/",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        """End the session: the cookie is dropped (the token itself stays valid)."""
        form = await form_of(request)
        held = request.cookies.get(COOKIE, "")
        sent = form.get("csrf", "").encode()
        if not same_origin(request) or not hmac.compare_digest(sent, csrf_token(held).encode()):
            raise HTTPException(403, "the logout form's CSRF token is missing or wrong: reload")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response
