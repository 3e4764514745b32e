"""The HTTP API and the dashboard (extra ``errands[web]``): `create_app` builds the ASGI app.

``errands api APP`` serves it with uvicorn; a user's own ASGI app can mount it instead::

    from errands.web import create_app
    api = create_app(app)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from errands.web.settings import WebSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from errands.app import App

__all__ = ["WebSettings", "create_app"]


def create_app(app: App, settings: WebSettings | None = None) -> FastAPI:
    """The ASGI app of the API and the dashboard for `app`'s queues.

    Raises:
        ConfigurationError: the ``web`` extra is not installed.
    """
    from errands.web.server import build  # noqa: PLC0415 - FastAPI only when asked for

    return build(app, settings or WebSettings())
