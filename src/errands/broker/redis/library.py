"""The errands Redis Functions library: its source, assembled from the packaged .lua files."""

from __future__ import annotations

from functools import cache
from importlib import resources

from errands.broker.redis.calls import LIBRARY_NAME

__all__ = ["LUA_FILES", "library_source"]

#: Shared helpers first; each later file registers one or two functions.
LUA_FILES: tuple[str, ...] = (
    "00_shared.lua",
    "enqueue.lua",
    "fetch.lua",
    "ack.lua",
    "heartbeat.lua",
    "release.lua",
    "cancel.lua",
    "redrive.lua",
    "purge.lua",
    "maintain.lua",
    "read.lua",
)


@cache
def library_source() -> str:
    """The whole library, ready for ``FUNCTION LOAD REPLACE``."""
    folder = resources.files("errands.broker.redis") / "lua"
    parts = [f"#!lua name={LIBRARY_NAME}"]
    parts += [(folder / name).read_text(encoding="utf-8") for name in LUA_FILES]
    return "\n".join(parts)
