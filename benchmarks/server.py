"""The Redis server a benchmark runs against: a private one it starts, or one it is given.

A private server is the system ``redis-server`` on a free loopback port (no persistence) in a
temporary folder, or the embedded Valkey of `errands.embedded` where ``redis-server`` is missing.
It is flushed between runs (it is ours) and stopped by its pid at the end. A given server (a URL,
as the smoke test passes) is shared: it is never flushed; only keys under the benchmark's prefix
are deleted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from errands.embedded import EmbeddedServer, redis_answers

__all__ = ["BenchServer", "CommandCounter", "free_port"]


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CommandCounter:
    """Counts the commands the driver itself sends, so they can be taken out of the totals."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def add(self, command: str, count: int = 1) -> None:
        """Record `count` calls of `command` (lower case, as INFO commandstats names them)."""
        self.calls[command] = self.calls.get(command, 0) + count


class BenchServer:
    """A Redis server for the benchmark.

    Args:
        url: a server to use as it is (shared: never flushed); None starts a private one.
        prefix: the prefix of every key the benchmark writes on a shared server.
        work_dir: where a private server keeps its log.
    """

    def __init__(self, url: str | None, prefix: str, work_dir: Path) -> None:
        self.private = url is None
        self.prefix = prefix
        self.work_dir = work_dir
        self.kind = "given"
        self._process: subprocess.Popen[bytes] | None = None
        self._embedded: EmbeddedServer | None = None
        self._tmp: str | None = None
        self.url = url or ""
        self.counter = CommandCounter()
        self._client: redis.Redis | None = None

    def start(self) -> BenchServer:
        """Start the private server (if any) and wait until it answers."""
        if not self.private:
            return self
        binary = shutil.which("redis-server")
        if binary:
            self._tmp = tempfile.mkdtemp(prefix="bench-redis-", dir=self.work_dir)
            port = free_port()
            argv = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._tmp,
                "--logfile", str(Path(self._tmp) / "redis.log"),
            ]  # fmt: skip
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while not redis_answers("127.0.0.1", port):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: see {self._tmp}/redis.log")
                time.sleep(0.05)
            self.url = f"redis://127.0.0.1:{port}/0"
            self.kind = "redis-server"
        else:
            self._embedded = EmbeddedServer(self.work_dir / "valkey").start()
            self.url = self._embedded.url
            self.kind = "embedded Valkey"
        return self

    @property
    def client(self) -> redis.Redis:
        """The driver's own connection."""
        if self._client is None:
            self._client = redis.Redis.from_url(self.url)
        return self._client

    def version(self) -> str:
        """The server's name and version, e.g. ``redis 7.0.15``."""
        info: dict[str, Any] = self.client.info("server")
        self.counter.add("info")
        name = "valkey" if "valkey_version" in info else "redis"
        return f"{name} {info.get('valkey_version') or info.get('redis_version')}"

    def reset(self) -> None:
        """Empty the server: FLUSHALL on a private one; the prefix's keys on a shared one."""
        if self.private:
            # SYNC: the memory is freed before the next INFO memory, whatever the server's
            # lazyfree settings.
            client: Any = self.client  # redis-py leaves execute_command untyped
            client.execute_command("FLUSHALL", "SYNC")
            self.counter.add("flushall")
            return
        for batch in _batches(self.client.scan_iter(match=f"{self.prefix}*", count=1000)):
            self.client.delete(*batch)

    def command_stats(self) -> dict[str, int]:
        """Calls per command so far (``INFO commandstats``), the driver's own ones taken out."""
        raw: dict[str, Any] = self.client.info("commandstats")
        self.counter.add("info")
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in raw.items()}
        for name, count in self.counter.calls.items():
            if name in calls:
                calls[name] -= count
        return calls

    def reset_stats(self) -> None:
        """``CONFIG RESETSTAT`` on a private server (a shared one keeps its stats: deltas)."""
        if self.private:
            self.client.config_resetstat()
            self.counter.calls.clear()
            self.counter.add("config|resetstat")

    def used_memory(self) -> int:
        """``INFO memory`` used_memory, in bytes, once no lazy free is pending.

        Keys deleted with UNLINK (or flushed ASYNC) by an earlier step are freed by a background
        thread and still counted until then: the reading waits for it (at most 20 s).
        """
        deadline = time.monotonic() + 20
        while True:
            info: dict[str, Any] = self.client.info("memory")
            self.counter.add("info")
            if not info.get("lazyfree_pending_objects") or time.monotonic() > deadline:
                return int(info["used_memory"])
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the private server by its pid: SIGTERM, then SIGKILL after 10 s."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._process is not None:
            _terminate(self._process)
            self._process = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _batches(keys: Iterator[Any], size: int = 500) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
