"""The errands Redis Functions library: its source, assembled from the packaged .lua files.

The library and its functions are named after a digest of their source, e.g.
``errands_v1_3f2a9c01d4_fetch``: two versions of errands on one server each call their own
code, never each other's, and a new version is loaded the first time a call finds it missing.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

__all__ = ["LUA_FILES", "function_name", "library_name", "library_source", "operation_of"]

#: Shared helpers first; each later file registers one or two functions.
LUA_FILES: tuple[str, ...] = (
    "00_shared.lua",
    "01_limits.lua",
    "02_due.lua",
    "enqueue.lua",
    "fetch.lua",
    "ack.lua",
    "heartbeat.lua",
    "release.lua",
    "cancel.lua",
    "redrive.lua",
    "purge.lua",
    "purge_ready.lua",
    "pause.lua",
    "leave.lua",
    "maintain.lua",
    "read.lua",
    "inspect.lua",
    "limits.lua",
    "chord.lua",
    "progress.lua",
    "schedule.lua",
    "alerts.lua",
    "series.lua",
    "budget.lua",
)

# The .lua files register their functions under this prefix; loading rewrites it.
_WRITTEN_PREFIX = "'errands_v1_"


@cache
def _files_source() -> str:
    folder = resources.files("errands.broker.redis") / "lua"
    return "\n".join((folder / name).read_text(encoding="utf-8") for name in LUA_FILES)


@cache
def library_name() -> str:
    """``errands_v1_<digest>``: the data-model version and a digest of the source."""
    digest = hashlib.sha1(_files_source().encode(), usedforsecurity=False).hexdigest()[:10]
    return f"errands_v1_{digest}"


@cache
def function_name(operation: str) -> str:
    """The registered name of one operation (enqueue, fetch, ack...)."""
    return f"{library_name()}_{operation}"


def operation_of(function: str) -> str:
    """The operation a registered function name stands for (`function_name` undone)."""
    return function.removeprefix(f"{library_name()}_")


@cache
def library_source() -> str:
    """The whole library, ready for ``FUNCTION LOAD REPLACE``."""
    body = _files_source().replace(_WRITTEN_PREFIX, f"'{library_name()}_")
    return f"#!lua name={library_name()}\n{body}"
