"""The worker sees brokers only through their protocols: no module of `errands.worker` imports
a Redis client or a broker implementation, so a second broker needs no change to the worker."""

from __future__ import annotations

import ast
from pathlib import Path

import errands.worker

WORKER = Path(errands.worker.__file__).parent

# What the worker may import from errands.broker: the protocols and the records they speak in.
ALLOWED_BROKER_MODULES = {
    "errands.broker.base",
    "errands.broker.names",
    "errands.broker.operator",
    "errands.broker.reading",
    "errands.broker.settings",
    "errands.broker.stores",
    "errands.broker.transport",
    "errands.broker.types",
    "errands.broker.urls",
}
BANNED_ROOTS = {"redis", "hiredis", "valkey"}


def forbidden_imports(source: str) -> list[str]:
    """Every module `source` imports that the worker must not, at any depth of the code."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            # `from errands.broker import redis` names a module too.
            names = [base] + [
                f"{base}.{alias.name}" for alias in node.names if base == "errands.broker"
            ]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            implementation = (
                name.startswith("errands.broker.") and name not in ALLOWED_BROKER_MODULES
            )
            if root in BANNED_ROOTS or implementation:
                found.append(name)
    return found


def test_the_check_sees_every_way_of_importing_redis() -> None:
    source = """
import redis
import hiredis as h
from redis.asyncio import Redis
from errands.broker.redis.broker import RedisBroker
from errands.broker import redis as r
from errands.broker.memory import MemoryBroker

def later():
    import redis.exceptions

if TYPE_CHECKING:
    from errands.broker.redis import direct_line
"""
    assert sorted(forbidden_imports(source)) == sorted(
        [
            "redis",
            "hiredis",
            "redis.asyncio",
            "errands.broker.redis.broker",
            "errands.broker.redis",
            "errands.broker.memory",
            "redis.exceptions",
            "errands.broker.redis",
        ]
    )
    allowed = "from errands.broker.transport import DirectWaits\nfrom errands.broker import types\n"
    assert forbidden_imports(allowed) == []


def test_no_worker_module_imports_redis_or_a_broker_implementation() -> None:
    modules = sorted(WORKER.rglob("*.py"))
    assert len(modules) >= 10, f"the worker package was not found where expected: {WORKER}"
    offenders = {
        str(path.relative_to(WORKER)): bad
        for path in modules
        if (bad := forbidden_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, (
        "errands.worker must reach brokers through the protocols of errands.broker "
        f"(transport, stores, operator, types): {offenders}"
    )
