"""Observability: logging set-up (console or JSON lines) carrying each job's context."""

from errands.observe.logging import configure_logging

__all__ = ["configure_logging"]
