# ruff: noqa: A005 - only ever run as `python -m benchmarks.http`: no stdlib import sees it
"""Enqueue over HTTP: errands' API against Flower's ``async-apply``, the same machine, one run.

``python -m benchmarks.http`` (``make bench-http``) starts a private Redis on a free loopback
port, then, one side after the other:

1. the generators' ceiling: wrk and the open-loop generator against a null server
   (`benchmarks.loadgen`) that answers every request with a fixed 202 and does nothing else;
2. errands: ``errands api`` (one uvicorn worker) on `benchmarks.adapters.web_app`,
   ``POST /v1/tasks/add`` with a bearer token holding ``enqueue:add``; wrk with keep-alive
   connections gives the maximum sustained rate, then the open-loop generator sends at half of
   it and takes each latency from the request's intended send time;
3. Flower: ``celery flower`` (its one tornado process, basic auth, no per-request log) on a Celery
   app with the same task (`benchmarks.adapters.flower_app`, its own environment from
   ``peers-flower.txt``), ``POST /api/task/async-apply/add``, the same wrk runs.

No worker runs: after each run the jobs the server enqueued are counted in Redis (errands' ready
count, the length of Celery's queue list) and set against the requests wrk sent and saw
answered. Every server is stopped by its pid; the Redis server too. The report is HTTP.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.adapters.base import ENV_URL
from benchmarks.adapters.web_app import ENV_NAMESPACE, build
from benchmarks.harness import BENCH, ROOT, WORK
from benchmarks.http_report import Ceilings, Run, Side, write_report
from benchmarks.loadgen import closed_loop, null_server, open_loop
from benchmarks.loadgen import raw_request as make_request
from benchmarks.run import VENVS, ensure_venv, errands_version, machine
from benchmarks.server import BenchServer, free_port
from errands import App
from errands.web.tokens import TokenStore

__all__ = ["main"]

_NAMESPACE = "bench-http"
_BODY = b'{"args": [1, 2]}'
_FLOWER_USER = "bench:not-a-secret"
_ERRANDS_ROUTE = "POST /v1/tasks/add (bearer token, scope enqueue:add)"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_cpu_s(server: BenchServer) -> float:
    info: dict[str, Any] = server.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextmanager
def _process(argv: Sequence[str], env: dict[str, str], probe: str, log: Path) -> Iterator[int]:
    """Run `argv` until the block ends, once `probe` answers 200; yield its pid."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited at start: {log.read_text()[-500:]}")
            try:
                if httpx.get(probe, timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{probe} did not answer within {_START_TIMEOUT_S:g} s")
            time.sleep(0.1)
        yield process.pid
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(_STOP_TIMEOUT_S)


def _settled(count: Callable[[], int], bound_s: float = 10.0) -> int:
    """`count` once it stops changing: requests still in flight when a run ended land first.

    A server may still be enqueueing the requests wrk had sent when it stopped; read too soon,
    they would be counted in the next run.
    """
    deadline = time.monotonic() + bound_s
    last = count()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count()
        if now == last:
            return now
        last = now
    return last


def _load_runs(
    side: Side,
    url: str,
    headers: dict[str, str],
    pid: int,
    server: BenchServer,
    count: Callable[[], int],
    options: argparse.Namespace,
    log: Callable[[str], None],
) -> None:
    closed_loop(url, _BODY, headers, connections=options.connections[0], duration_s=2)
    for connections in options.connections:
        before, cpu, redis_cpu = _settled(count), _cpu_s(pid), _redis_cpu_s(server)
        load = closed_loop(
            url, _BODY, headers, connections=connections, duration_s=options.duration
        )
        cpu, redis_cpu = _cpu_s(pid) - cpu, _redis_cpu_s(server) - redis_cpu
        run = Run(load, _settled(count) - before, cpu, redis_cpu)
        side.runs.append(run)
        log(
            f"{side.name} c={connections}: {load.rate:,.0f}/s, sent {load.sent:,}, answered "
            f"{load.answered:,}, 2xx {load.ok:,}, in Redis {run.counted:,}"
        )


@dataclass
class _Errands:
    """errands' side: its app (to count in Redis) and the token its requests carry."""

    server: BenchServer
    app: App
    token: str
    side: Side

    def count(self) -> int:
        return self.app.inspector.queue(self.app.default_queue).ready

    def round(
        self, options: argparse.Namespace, log: Callable[[str], None], open_rate: float = 0.0
    ) -> None:
        """A fresh ``errands api``: the wrk runs, or (`open_rate`) the open-loop run."""
        port = free_port()
        env = {ENV_URL: self.server.url, ENV_NAMESPACE: _NAMESPACE}
        argv = [
            sys.executable, "-m", "errands", "api", "benchmarks.adapters.web_app:app",
            "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        headers = {"Authorization": f"Bearer {self.token}"}
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v1/tasks/add"
        with _process(argv, env, f"{base}/healthz", WORK / "http-errands.log") as pid:
            if not open_rate:
                _load_runs(self.side, url, headers, pid, self.server, self.count, options, log)
                return
            closed_loop(url, _BODY, headers, connections=options.connections[0], duration_s=2)
            request = make_request("127.0.0.1", port, "/v1/tasks/add", _BODY, headers)
            before, cpu = _settled(self.count), _cpu_s(pid)
            side = self.side
            side.open = open_loop(
                "127.0.0.1", port, request, rate=open_rate, duration_s=options.open_duration
            )
            side.open_server_cpu_s = _cpu_s(pid) - cpu
            side.open_counted = _settled(self.count) - before
            q = side.open.quantiles_ms()
            log(
                f"errands open loop at {open_rate:,.0f}/s: p50 {q['p50']:.2f} ms, p99 "
                f"{q['p99']:.2f} ms, p99.9 {q['p99.9']:.2f} ms"
            )


async def _token(app: Any) -> str:
    try:
        token, _ = await TokenStore(app).create(["enqueue:add"], note="benchmarks/http.py")
        return token
    finally:
        await app.broker.aclose()


def _flower_round(
    side: Side, server: BenchServer, options: argparse.Namespace, log: Callable[[str], None]
) -> None:
    """A fresh Flower, and the wrk runs against it."""
    python = VENVS["flower"][0] / "bin" / "python"
    port = free_port()
    argv = [
        str(python), "-m", "celery", "-A", "benchmarks.adapters.flower_app:app", "flower",
        "--address=127.0.0.1", f"--port={port}", f"--basic-auth={_FLOWER_USER}",
        "--logging=warning",
    ]  # fmt: skip
    basic = base64.b64encode(_FLOWER_USER.encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    base = f"http://127.0.0.1:{port}"

    def count() -> int:
        return int(server.client.llen("celery"))

    env = {ENV_URL: server.url}
    with _process(argv, env, f"{base}/healthcheck", WORK / "http-flower.log") as pid:
        url = f"{base}/api/task/async-apply/add"
        _load_runs(side, url, headers, pid, server, count, options, log)


def _sides(
    server: BenchServer, options: argparse.Namespace, log: Callable[[str], None]
) -> list[Side]:
    """Each side's rounds, interleaved (errands, Flower, errands, ...), then the open loop."""
    app = build(server.url, _NAMESPACE)
    errands = _Errands(server, app, asyncio.run(_token(app)), Side("errands", _ERRANDS_ROUTE))
    flower = Side("Flower", "POST /api/task/async-apply/add (basic auth)")
    if not options.no_flower:
        flower.error = ensure_venv("flower", log)
    try:
        for _ in range(options.rounds):
            errands.round(options, log)
            if not options.no_flower and not flower.error:
                _flower_round(flower, server, options, log)
        rate = errands.side.median_rate
        if rate:
            errands.round(options, log, open_rate=rate / 2)
        else:
            errands.side.error = "no request was answered 2xx: see .work/http-errands.log"
    finally:
        app.broker.close()
    return [errands.side] if options.no_flower else [errands.side, flower]


def _ceilings(options: argparse.Namespace, rate: float, log: Callable[[str], None]) -> Ceilings:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/tasks/add"
    headers = {"Authorization": "Bearer erd_null_server"}
    request = make_request("127.0.0.1", port, "/v1/tasks/add", _BODY, headers)
    ceilings = Ceilings()
    with null_server(port):
        connections = max(options.connections)
        ceilings.wrk = closed_loop(
            url, _BODY, headers, connections=connections, duration_s=options.duration
        )
        log(f"wrk against the null server: {ceilings.wrk.rate:,.0f}/s")
        duration = min(options.open_duration, 10)
        if rate > 0:
            ceilings.floor = open_loop("127.0.0.1", port, request, rate=rate, duration_s=duration)
        ceilings.top = open_loop(
            "127.0.0.1", port, request, rate=options.top_rate, duration_s=duration
        )
        log(f"open loop at {options.top_rate:,.0f}/s on the null server: {ceilings.top.answered:,}")
    return ceilings


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", default="16", help="wrk connection counts, commas")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per side, interleaved")
    parser.add_argument("--open-duration", type=float, default=20.0, help="open-loop seconds")
    parser.add_argument(
        "--top-rate", type=float, default=8000.0, help="open-loop rate tried on the null server"
    )
    parser.add_argument("--no-flower", action="store_true", help="errands and the ceilings only")
    parser.add_argument("--out", type=Path, default=BENCH / "HTTP.md")
    options = parser.parse_args(argv)
    options.connections = [int(c) for c in options.connections.split(",") if c]
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its report; 0 when every side ran."""
    options = _parse(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:5.0f}s] {message}", file=sys.stderr, flush=True)

    meta = {
        "command": " ".join(
            ["python -m benchmarks.http", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "errands": errands_version(),
        "load_start": f"{os.getloadavg()[0]:.2f}",
    }
    WORK.mkdir(parents=True, exist_ok=True)
    server = BenchServer(None, "", WORK).start()
    sides: list[Side] = []
    try:
        meta["server"] = f"{server.version()} ({server.kind})"
        log(f"server {meta['server']} at {server.url}")
        sides = _sides(server, options, log)
        errands = sides[0]
        ceilings = _ceilings(options, errands.open.rate if errands.open else 0.0, log)
    finally:
        server.stop()
    meta["load_end"] = f"{os.getloadavg()[0]:.2f}"
    meta["wall_s"] = f"{time.monotonic() - started:.0f}"
    write_report(options.out, sides, ceilings, meta, options)
    log(f"wrote {options.out}")
    return 1 if any(side.error for side in sides) else 0


if __name__ == "__main__":
    sys.exit(main())
