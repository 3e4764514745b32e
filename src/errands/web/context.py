"""`WebContext`: what every route of one API server reads (the app, its settings, its tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from fastapi import Request

from errands.web.settings import WebSettings

if TYPE_CHECKING:
    from errands.app import App
    from errands.web.tokens import TokenStore

__all__ = ["WebContext", "web_context"]


@dataclass(frozen=True)
class WebContext:
    """The server's state, kept on ``request.app.state.errands``.

    Attributes:
        app: the errands app whose queues the server serves.
        settings: how the server behaves.
        tokens: where the bearer tokens are kept.
    """

    app: App
    settings: WebSettings
    tokens: TokenStore


async def web_context(request: Request) -> WebContext:
    """The `WebContext` of the server `request` reached (a FastAPI dependency).

    Async on purpose: FastAPI runs a plain function dependency in its thread pool, a thread
    hop on every request for what is an attribute read.
    """
    return cast("WebContext", request.app.state.errands)
