"""`serving`: a registry served on ``/metrics`` by prometheus_client's HTTP server, on a thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.registry import Collector

from errands.errors import ConfigurationError

__all__ = ["serving"]


@contextlib.contextmanager
def serving(collectors: list[Collector], port: int, host: str, option: str) -> Iterator[None]:
    """Serve `collectors` on ``http://host:port/metrics`` while the block runs.

    Raises `ConfigurationError`, naming the command-line `option` that set the port, when the
    port cannot be bound.
    """
    registry = CollectorRegistry(auto_describe=False)  # collectors without describe()
    for collector in collectors:
        registry.register(collector)
    try:
        server, thread = start_http_server(port, host, registry)
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve metrics on port {port} ({error.strerror}): choose another {option}, "
            "or stop what listens there"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
