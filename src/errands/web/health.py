"""``/healthz`` (the API process answers) and, later, ``/readyz`` (Redis and the consumers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["routes"]


def routes(app: App) -> APIRouter:
    """The probes for `app`."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The API process is up (it says nothing of Redis: see ``/readyz``)."""
        return {"status": "ok"}

    return router
