"""HTTP load for the API benchmark: an open-loop generator, wrk for the closed loop, a null server.

- `open_loop` sends one request every ``1/rate`` seconds over keep-alive connections and takes
  each latency from the request's *intended* send time, not from when a connection was free to
  send it: a stall of the server shows as the latency of every request scheduled during it
  (no coordinated omission). Requests wait in a queue for a free connection; none is dropped.
- `closed_loop` runs ``wrk`` (C, keep-alive, each connection sends its next request as soon as
  the last one is answered) with a Lua script that sets the method, body and headers, and counts
  requests sent, answered and answered 2xx across its threads.
- ``python -m benchmarks.loadgen serve PORT`` is the null server: it answers every request
  with the same small 202 and does nothing else, so its rate is the generators' own ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ClosedLoop",
    "OpenLoop",
    "closed_loop",
    "null_server",
    "open_loop",
    "percentile",
    "raw_request",
    "serve",
]

_NULL_REPLY = (
    b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_WRK_LINE = re.compile(r"^BENCH (.*)$", re.MULTILINE)


def raw_request(host: str, port: int, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The bytes of one keep-alive ``POST path`` with a JSON `body`."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `sorted_values` lie (nearest rank)."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, int(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


@dataclass
class OpenLoop:
    """What an open-loop run saw.

    Attributes:
        rate: the intended rate, requests per second.
        duration_s: how long requests were scheduled for.
        latencies_s: per answered request, seconds from its intended send time to its answer.
        statuses: answers per HTTP status.
        errors: requests that got no answer (the connection failed), with why.
        cpu_s: CPU seconds the generator's process used during the run.
    """

    rate: float
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0

    @property
    def answered(self) -> int:
        """Requests answered, whatever the status."""
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        """Requests answered with a 2xx."""
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def quantiles_ms(self) -> dict[str, float]:
        """p50, p99, p99.9 and the maximum latency, in milliseconds."""
        ordered = sorted(self.latencies_s)
        return {
            "p50": percentile(ordered, 0.50) * 1e3,
            "p99": percentile(ordered, 0.99) * 1e3,
            "p99.9": percentile(ordered, 0.999) * 1e3,
            "max": (ordered[-1] if ordered else float("nan")) * 1e3,
            "mean": (statistics.fmean(ordered) if ordered else float("nan")) * 1e3,
        }


#: The sender's shortest sleep (seconds): a bound on how late it sends, which the latencies
#: include (they count from each request's intended time).
_TICK_S = 0.001


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = _CONTENT_LENGTH.search(head)
    if length is None:
        raise ValueError("a response without content-length (chunked is not read here)")
    await reader.readexactly(int(length.group(1)))
    return int(head[9:12])


async def _open_loop(
    host: str, port: int, request: bytes, rate: float, duration_s: float, connections: int
) -> OpenLoop:
    result = OpenLoop(rate=rate, duration_s=duration_s)
    due: asyncio.Queue[float | None] = asyncio.Queue()
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (intended := await due.get()) is not None:
            try:
                writer.write(request)
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as failed:
                name = type(failed).__name__
                result.errors[name] = result.errors.get(name, 0) + 1
                return
            result.latencies_s.append(time.perf_counter() - intended)
            result.statuses[status] = result.statuses.get(status, 0) + 1

    workers = [asyncio.create_task(connection(r, w)) for r, w in streams]
    total = int(rate * duration_s)
    start = time.perf_counter() + 0.05
    sent = 0
    while sent < total:
        # Every request whose time has come is queued at once, however late this loop woke:
        # its latency still counts from its own intended time.
        now = time.perf_counter()
        while sent < total and start + sent / rate <= now:
            due.put_nowait(start + sent / rate)
            sent += 1
        if sent < total:
            # Never less than a tick: sleeps of microseconds would spin a core that the server
            # measured needs; a request sent up to a tick late still counts from its own time.
            await asyncio.sleep(max(_TICK_S, start + sent / rate - time.perf_counter()))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    for _, writer in streams:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return result


def open_loop(
    host: str,
    port: int,
    request: bytes,
    *,
    rate: float,
    duration_s: float,
    connections: int = 32,
) -> OpenLoop:
    """Send `request` at `rate` per second for `duration_s` over `connections` keep-alives.

    Runs on this process's own event loop (uvloop when installed) and returns when every
    scheduled request is answered or its connection failed.
    """
    cpu = time.process_time()
    result = _run(_open_loop(host, port, request, rate, duration_s, connections))
    result.cpu_s = time.process_time() - cpu
    return result


def _run(coroutine: Coroutine[Any, Any, OpenLoop]) -> OpenLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


@dataclass(frozen=True)
class ClosedLoop:
    """What a wrk run saw.

    Attributes:
        connections: keep-alive connections held open.
        duration_s: the run's length as wrk measured it.
        sent: requests written (some may be in flight when wrk stops).
        answered: requests answered.
        ok: requests answered with a 2xx.
        errors: connect, read, write and timeout errors wrk counted.
        cpu_s: CPU seconds wrk used.
    """

    connections: int
    duration_s: float
    sent: int
    answered: int
    ok: int
    errors: int
    cpu_s: float

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / self.duration_s if self.duration_s else 0.0


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) sent = 0; answered = 0; ok = 0; req = wrk.format() end
function request() sent = sent + 1; return req end
function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then ok = ok + 1 end
end
function done(summary, latency, requests)
  local s, a, o = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent"); a = a + t:get("answered"); o = o + t:get("ok")
  end
  local e = summary.errors
  io.write(string.format("BENCH sent=%d answered=%d ok=%d errors=%d duration_us=%d\\n",
    s, a, o, e.connect + e.read + e.write + e.timeout, summary.duration))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def closed_loop(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connections: int,
    duration_s: float,
    threads: int = 2,
) -> ClosedLoop:
    """``wrk`` POSTing `body` to `url` with `headers`, `connections` at once, for `duration_s`.

    Raises:
        RuntimeError: wrk is missing (``apt-get install wrk``), failed, or printed no counts.
    """
    header_lines = "\n".join(
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}"
        for name, value in headers.items()
    )
    script = _WRK_SCRIPT.format(body=_lua_string(body.decode()), headers=header_lines)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        argv = [
            "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s",
            "--timeout", "10s", "-s", handle.name, url,
        ]  # fmt: skip
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration_s + 60, check=False
        )
    except FileNotFoundError:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk") from None
    finally:
        Path(handle.name).unlink()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = _WRK_LINE.search(done.stdout)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    counts = dict(part.split("=") for part in line.group(1).split())
    return ClosedLoop(
        connections=connections,
        duration_s=int(counts["duration_us"]) / 1e6,
        sent=int(counts["sent"]),
        answered=int(counts["answered"]),
        ok=int(counts["ok"]),
        errors=int(counts["errors"]),
        cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


class _NullProtocol(asyncio.Protocol):
    """Answers each request on a connection with the same 202, reading bodies by length."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = _CONTENT_LENGTH.search(self._buffer, 0, end + 2)
            size = end + 4 + (int(length.group(1)) if length else 0)
            if len(self._buffer) < size:
                return
            self._buffer = self._buffer[size:]
            if self._transport is not None:
                self._transport.write(_NULL_REPLY)


async def serve(port: int) -> None:
    """Run the null server on ``127.0.0.1:port`` until SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await loop.create_server(_NullProtocol, "127.0.0.1", port)
    async with server:
        await stop


@contextlib.contextmanager
def null_server(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The null server in a process of its own on `port`, stopped by its pid at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.loadgen", "serve", str(port)],
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the null server did not start") from None
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        sys.exit("usage: python -m benchmarks.loadgen serve PORT")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(int(sys.argv[2])))
    else:
        uvloop.run(serve(int(sys.argv[2])))
