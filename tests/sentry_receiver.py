"""A Sentry receiver on a free loopback port, for tests that point sentry-sdk at it.

`SentryReceiver` serves ``POST /api/<project>/envelope/`` in a thread, parses each envelope
(gzip or plain) and queues the events it holds; `wait_for_event` blocks with a bound.
`BlackHole` is a port that takes connections and never answers: a Sentry that is down the slow
way.
"""

from __future__ import annotations

import gzip
import json
import queue
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BlackHole", "SentryReceiver", "parse_envelope"]

Event = dict[str, Any]


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The items of a Sentry envelope: (item header, payload) each, after the envelope header."""
    _, _, rest = body.partition(b"\n")
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        items.append((header, payload))
    return items


class SentryReceiver:
    """An HTTP server that takes Sentry envelopes and queues their events."""

    def __init__(self) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.requests += 1
                for header, payload in parse_envelope(body):
                    if header.get("type") == "event":
                        receiver.events.put(json.loads(payload))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet: the test reads the events

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def dsn(self) -> str:
        """The DSN that points sentry-sdk here (project 1)."""
        return f"http://public@127.0.0.1:{self.port}/1"

    def wait_for_event(self, timeout_s: float = 15.0) -> Event:
        """The next event received; fail the test after `timeout_s`."""
        try:
            return self.events.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no Sentry event arrived within {timeout_s:g}s") from None

    def received(self) -> list[Event]:
        """Every event received and not taken yet, without waiting."""
        taken: list[Event] = []
        while True:
            try:
                taken.append(self.events.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


class BlackHole:
    """A loopback port that accepts connections into its backlog and never answers."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]

    @property
    def dsn(self) -> str:
        """A DSN that points sentry-sdk at the hole."""
        return f"http://public@127.0.0.1:{self.port}/1"

    def close(self) -> None:
        """Close the port."""
        self._socket.close()
