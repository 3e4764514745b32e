"""A local HTTP receiver for the alert sinks: it records every JSON POST it takes.

`Receiver` listens on a free loopback port from a thread of the test; `wait_for` blocks (with a
bound) until so many posts arrived. `failing` makes it answer 503 to the next posts, to test a
sink's retries.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Receiver"]


class Receiver:
    """Records the JSON bodies POSTed to it, in order.

    Args:
        port: the port to listen on (0: a free one).
    """

    def __init__(self, port: int = 0) -> None:
        self.posts: list[dict[str, Any]] = []
        self.refused = 0  # posts answered 503
        self.failing = 0  # how many of the next posts get a 503
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    if receiver.failing > 0:
                        receiver.failing -= 1
                        receiver.refused += 1
                        status = 503
                    else:
                        receiver.posts.append(json.loads(body))
                        status = 202
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the test reads `posts`."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v2/enqueue"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        """The posts, once at least `count` arrived; fails the test after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout_s:g}s waiting for {count} posts; "
                        f"got {self.posts}"
                    )
                self._changed.wait(left)
            return list(self.posts)

    def wait_refused(self, count: int, timeout_s: float = 20.0) -> None:
        """Return once `count` posts were refused (503)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self.refused < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} refused posts")
                self._changed.wait(left)

    def close(self) -> None:
        """Stop listening."""
        self._server.shutdown()
        self._server.server_close()
