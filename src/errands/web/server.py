"""`build`: the FastAPI app, its routes gathered from one module per resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

import errands
from errands.web import dashboard, errors, health, jobs, openapi, operations, tasks, token_routes
from errands.web.body_limit import BodyLimit
from errands.web.context import WebContext
from errands.web.fast_enqueue import TASKS_PREFIX, Endpoint, FastEnqueue
from errands.web.settings import WebSettings
from errands.web.tokens import token_store

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["build"]


def build(app: App, settings: WebSettings) -> FastAPI:
    """The API and dashboard of `app`, behaving as `settings` say."""
    api = FastAPI(
        title="errands",
        version=errands.__version__,
        description="Enqueue tasks by name, follow jobs, operate queues (docs/web.md).",
        # Served by errands.web.openapi: completed, behind a token when the settings say so.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.errands = WebContext(
        app=app, settings=settings, tokens=token_store(app, settings.token_cache_s)
    )
    endpoints: dict[str, Endpoint] = {}
    api.add_middleware(FastEnqueue, endpoints=endpoints)  # innermost: CORS and limits apply
    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    api.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    errors.install(api)
    for module in (health, tasks, jobs, operations, dashboard, token_routes):
        router = module.routes(app)
        endpoints.update(_enqueue_endpoints(router))
        api.include_router(router)
    openapi.install(api)
    return api


def _enqueue_endpoints(router: APIRouter) -> dict[str, Endpoint]:
    """Task name -> the endpoint of its ``POST /v1/tasks/<name>`` route in `router`."""
    found: dict[str, Endpoint] = {}
    for route in router.routes:
        if isinstance(route, APIRoute) and "POST" in (route.methods or ()):
            name = route.path.removeprefix(TASKS_PREFIX)
            if route.path.startswith(TASKS_PREFIX) and "{" not in name:
                found[name] = route.endpoint
    return found
