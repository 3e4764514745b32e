"""The producer side of one system, run by the driver in that system's virtual environment.

``python -m benchmarks.producer SYSTEM ACTION [options]`` imports the system's adapter, does one
thing and prints one line ``BENCH-RESULT {json}`` on stdout:

- ``describe``: label, versions, settings, bulk API, async support, worker commands;
- ``enqueue``: enqueue ``--n`` jobs of ``--task`` one by one or in bulk (``--mode``), timed from
  the first enqueue to the last (connections are opened before the clock starts);
- ``fill``: the same with the fastest path the system has, to prepare a queue (untimed): bulk
  when it has a bulk API, else 100 sends in flight for async systems, else one by one;
- ``latency``: ``--windows`` runs of ``--n`` jobs in turn on an idle worker: enqueue, wait for
  the result with the system's API; each sample is (enqueue-to-start, enqueue-to-result) in
  seconds.

Every action stops at its ``--cap-s`` and says how many jobs it did.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import random
import sys
import time
from typing import Any

from benchmarks.adapters import ADAPTERS
from benchmarks.adapters.base import Adapter

__all__ = ["MARKER", "load", "main"]

MARKER = "BENCH-RESULT "


def load(system: str) -> Adapter:
    """The adapter of `system`, from its module."""
    module_name, _venv = ADAPTERS[system]
    module = importlib.import_module(module_name)
    classes: dict[str, type[Adapter]] = module.ADAPTERS
    return classes[system]()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe(adapter: Adapter) -> dict[str, Any]:
    """What the driver needs to know about a system, and what RESULTS.md reports."""
    workers = {
        f"{kind}:{children}": adapter.worker_argvs(kind, children)
        for kind, children in (("default", 1), ("default", 2))
    }
    if adapter.no_async_reason is None:
        workers["async:1"] = adapter.worker_argvs("async", 1)
    return {
        "name": adapter.name,
        "label": adapter.label,
        "versions": {p: _version(p) for p in adapter.packages},
        "python": sys.version.split()[0],
        "namespaced": adapter.namespaced,
        "bulk_api": adapter.bulk_api,
        "no_bulk_reason": adapter.no_bulk_reason,
        "no_async_reason": adapter.no_async_reason,
        "settings": list(adapter.settings),
        "workers": workers,
    }


async def enqueue(
    adapter: Adapter, task: str, args: list[Any], n: int, mode: str, cap_s: float
) -> dict[str, Any]:
    """Enqueue `n` jobs; time from the first enqueue to the last."""
    await adapter.connect()
    if mode == "fill":
        mode = "bulk" if adapter.bulk_api else "many" if adapter.async_native else "one"
    if mode == "bulk" and not adapter.bulk_api:
        return {"done": 0, "elapsed_s": 0.0, "mode": mode, "na": "no bulk API"}
    started = time.monotonic()
    deadline = started + cap_s
    if mode == "bulk":
        done = await adapter.enqueue_bulk(task, args, n, deadline)
    elif mode == "one":
        done = await adapter.enqueue_one_by_one(task, args, n, deadline)
    else:
        done = await _concurrently(adapter, task, args, n, deadline)
    elapsed = time.monotonic() - started
    await adapter.close()
    return {"done": done, "elapsed_s": elapsed, "mode": mode}


async def _concurrently(
    adapter: Adapter, task: str, args: list[Any], n: int, deadline: float, width: int = 100
) -> int:
    """Queue `n` jobs with `width` sends in flight (an untimed fill of an async system)."""
    done = 0
    while done < n and time.monotonic() < deadline:
        size = min(width, n - done)
        await asyncio.gather(*(adapter.send(task, args) for _ in range(size)))
        done += size
    return done


async def latency(
    adapter: Adapter, n: int, windows: int, cap_s: float, timeout_s: float
) -> dict[str, Any]:
    """`windows` runs of `n` jobs in turn on an idle worker, each stopped at `cap_s`.

    One warm-up job goes first (its wait covers the worker's start-up) and is not counted.
    """
    await adapter.connect()
    await adapter.warm_up(timeout_s)
    rng = random.Random(7)
    runs: list[list[tuple[float, float]]] = []
    for _ in range(windows):
        deadline = time.monotonic() + cap_s
        samples: list[tuple[float, float]] = []
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            # A short random pause keeps the worker idle and the phase of any polling random.
            await asyncio.sleep(rng.uniform(0.001, 0.005))
            sent = time.time()
            handle = await adapter.send("echo")
            started = float(await adapter.result(handle, timeout_s))
            arrived = time.time()
            samples.append((started - sent, arrived - sent))
        runs.append(samples)
    await adapter.close()
    return {"windows": runs}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.producer")
    parser.add_argument("system", choices=sorted(ADAPTERS))
    parser.add_argument("action", choices=["describe", "enqueue", "fill", "latency"])
    parser.add_argument("--task", default="noop")
    parser.add_argument("--arg", type=int, action="append", default=[])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--mode", choices=["one", "bulk"], default="one")
    parser.add_argument("--cap-s", type=float, default=60.0)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument("--windows", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one action and print its result."""
    options = _parse(argv)
    adapter = load(options.system)
    result: dict[str, Any]
    if options.action == "describe":
        result = describe(adapter)
    elif options.action == "latency":
        result = asyncio.run(
            latency(adapter, options.n, options.windows, options.cap_s, options.timeout_s)
        )
    else:
        mode = "fill" if options.action == "fill" else options.mode
        coro = enqueue(adapter, options.task, options.arg, options.n, mode, options.cap_s)
        result = asyncio.run(coro)
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
