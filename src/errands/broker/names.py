"""The rule for queue names, shared by every broker and the worker's queue parsing."""

from __future__ import annotations

import re

from errands.errors import ConfigurationError

__all__ = ["check_queue_name"]

# No braces (they would break the Redis Cluster hash tag) and nothing a shell or URL mangles.
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def check_queue_name(name: str) -> str:
    """Return `name` if it is a valid queue name, else raise `ConfigurationError`."""
    if not isinstance(name, str) or not _QUEUE_NAME.match(name):
        raise ConfigurationError(
            f"queue name {name!r} is not allowed: use 1-100 letters, digits, '_', '-' or '.'"
        )
    return name
