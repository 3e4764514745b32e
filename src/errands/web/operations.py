"""Routes of the operations part of the API (filled in by its issue work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["routes"]


def routes(app: App) -> APIRouter:
    """The operations routes for `app`."""
    return APIRouter()
