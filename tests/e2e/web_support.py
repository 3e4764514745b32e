"""A real ``errands api`` process for the web tests, and tokens for its requests.

`ApiServer` starts ``python -m errands api MODULE:app`` on a free loopback port with the test's
broker URL and namespace in its environment, waits (bounded) until ``/healthz`` answers, and at
the end stops the process it started, by pid. `make_token` creates a token with given scopes in
the test's namespace, as ``errands token create`` would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from errands import App
from errands.web.tokens import TokenStore
from tests.e2e.env_app import ROOT, environment
from tests.integration.workers import free_port

__all__ = ["ApiServer", "api_server", "make_token"]

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


def make_token(
    app: App, *scopes: str, expires_in_s: float | None = None, note: str = "test"
) -> str:
    """A new token with `scopes` in `app`'s namespace (the token itself, shown once)."""

    async def create() -> str:
        try:
            store = TokenStore(app)
            token, _ = await store.create(scopes, expires_in_s=expires_in_s, note=note)
            return token
        finally:
            await app.broker.aclose()

    return asyncio.run(create())


class ApiServer:
    """A running ``errands api`` process.

    Attributes:
        url: its base URL, ``http://127.0.0.1:<port>``.
        log: the file its stderr goes to.
    """

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def client(self, token: str | None = None, **options: object) -> httpx.Client:
        """An HTTP client on the server, sending `token` as its bearer token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0, **options)  # type: ignore[arg-type]

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after a bound; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_STOP_TIMEOUT_S)
        return self.process.returncode


@contextmanager
def api_server(
    app: App,
    log_dir: Path,
    app_spec: str = "tests.e2e.web_app:app",
    extra_args: Sequence[str] = (),
) -> Iterator[ApiServer]:
    """Run ``errands api`` for `app_spec`, on `app`'s broker and namespace, until the block ends."""
    port = free_port()
    log = log_dir / f"api-{port}.log"
    env = {**os.environ, **environment(app, app_spec), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "errands", "api", app_spec),
                *("--port", str(port), "--insecure-cookies", *extra_args),
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = ApiServer(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


def _wait_ready(server: ApiServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"errands api exited early:\n{server.log.read_text()}")
        try:
            # 401: the server answers, its probes behind a token (--private-probes).
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"errands api did not answer within {_START_TIMEOUT_S:g}s")
