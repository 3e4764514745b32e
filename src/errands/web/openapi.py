"""The OpenAPI 3.1 document: FastAPI's, made true to what the server answers.

FastAPI documents its own 422 shape; the server answers every 422 with its problems and their
paths (`errands.web.errors`), so that shape is replaced by the one sent. Every operation may
also meet the body limit (413) and a Redis that cannot serve (503), and every one that needs
a token may answer 401 and 403: those replies are added where a route did not list them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse, Response

from errands.web import docs_page
from errands.web.auth import READ, authenticate
from errands.web.context import WebContext
from errands.web.errors import PROBLEMS_SCHEMA, json_reply, responses

__all__ = ["PUBLIC_PATHS", "install"]

#: Paths that answer without a token under the default settings.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/plain"})

_PLAIN_LINK = (
    '<body><p style="font:14px system-ui,sans-serif;margin:.5em 1em">Swagger UI comes from '
    'cdn.jsdelivr.net; if nothing shows below, read <a href="/docs/plain">the same document '
    "without scripts</a>.</p>"
)


def _complete(document: dict[str, Any], public: frozenset[str]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if "HTTPValidationError" in schemas:
        schemas["HTTPValidationError"] = PROBLEMS_SCHEMA
        schemas.pop("ValidationError", None)
    # The bearer scheme is auth's ("token"); declared here too for a document with no route
    # that asked for it.
    document["components"].setdefault("securitySchemes", {}).setdefault(
        "token", {"type": "http", "scheme": "bearer", "description": "errands token create"}
    )
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            codes = [413, 503] if path in public else [401, 403, 413, 503]
            extra = responses(*codes)
            listed = operation.setdefault("responses", {})
            for code, reply in extra.items():
                listed.setdefault(str(code), reply)
            if path not in public:
                operation.setdefault("security", [{"token": []}])
    return document


async def _gate(request: Request) -> None:
    web: WebContext = request.app.state.errands
    if web.settings.public_openapi:
        return
    principal = await authenticate(request, web)
    if not principal.allows(READ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the token lacks the scope {READ!r}: create one with --scope {READ}",
        )


def install(api: FastAPI, public: frozenset[str] = PUBLIC_PATHS) -> None:
    """Serve the completed document (built once) at ``/openapi.json``, and ``/docs``.

    Both answer without a token unless ``settings.public_openapi`` is False (then ``read``).
    FastAPI's own document and pages must be off (``openapi_url=None``, ``docs_url=None``).
    """

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = get_openapi(
                title=api.title,
                version=api.version,
                openapi_version=api.openapi_version,
                description=api.description,
                routes=api.routes,
                tags=api.openapi_tags,
            )
            api.openapi_schema = _complete(document, public)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    async def openapi_json(request: Request) -> Response:
        await _gate(request)
        return json_reply(openapi())

    async def docs(request: Request) -> Response:
        await _gate(request)
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{api.title} API")
        # The browser loads Swagger UI from its CDN (the server fetches nothing); a browser
        # that cannot reach it still has the plain page.
        return HTMLResponse(bytes(page.body).decode().replace("<body>", _PLAIN_LINK, 1))

    async def plain_docs(request: Request) -> Response:
        await _gate(request)
        return HTMLResponse(docs_page.render(openapi()))

    api.add_api_route("/openapi.json", openapi_json, include_in_schema=False)
    api.add_api_route("/docs", docs, include_in_schema=False)
    api.add_api_route("/docs/plain", plain_docs, include_in_schema=False)
