"""RQ: the default ``Worker`` (a fork per job) and ``SimpleWorker`` (in process), peers' env.

Settings:
- the worker runs from a small worker script (``python -m benchmarks.adapters.rq_adapter
  worker``) that imports the task module before forking: the docs' "Performance notes" on
  workers (a custom worker script that preloads modules instead of ``rq worker``, so the fork
  per job does not import them again);
- ``rq`` is ``Worker`` (RQ's default and its README's production advice); ``rq-simple`` is
  ``SimpleWorker`` (README, "Notes on Performance": 6x faster on short jobs, no fork);
- 2 children are two worker processes (an RQ worker runs one job at a time);
- noop/cpu jobs: ``result_ttl=0`` (the docs: the result is not kept);
- bulk: ``Queue.enqueue_many`` with ``Queue.prepare_data`` (one pipeline per 1,000 jobs);
- async: RQ runs an ``async def`` job with ``asyncio.run`` inside the job, one at a time per
  worker, so there is no concurrency 200: n/a;
- log level WARNING.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker

from benchmarks.adapters.base import (
    Adapter,
    chunks,
    cpu_body,
    echo_body,
    noop_body,
    redis_url,
)

# Plain functions: RQ imports them by their path, the shared bodies themselves.
_TASKS = {"noop": noop_body, "echo": echo_body, "cpu": cpu_body}
_KEEP = {"echo"}  # the only task whose result anybody reads


class RQAdapter(Adapter):
    """RQ with the default Worker (fork per job)."""

    name = "rq"
    label = "RQ (Worker)"
    packages = ("rq", "redis", "hiredis")
    bulk_api = "Queue.enqueue_many (one pipeline per 1,000 jobs)"
    no_async_reason = (
        "RQ runs an async def job with asyncio.run, one job at a time per worker: "
        "no concurrency 200"
    )
    settings = (
        "default `Worker` (fork per job), from a worker script that preloads the task module "
        "(docs, workers, 'Performance notes')",
        "2 children = 2 worker processes (one job at a time each)",
        "noop/cpu jobs `result_ttl=0` (result not kept); log level WARNING",
    )
    simple = False

    def __init__(self) -> None:
        self.connection = Redis.from_url(redis_url())
        self.queue = Queue("bench", connection=self.connection)

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One worker process per child."""
        argv = [sys.executable, "-m", __name__, "worker"]
        if self.simple:
            argv.append("--simple")
        return [argv for _ in range(children)]

    async def connect(self) -> None:
        """PING."""
        self.connection.ping()

    async def send(self, task: str, args: Sequence[Any] = ()) -> Any:
        """``Queue.enqueue``."""
        options = {} if task in _KEEP else {"result_ttl": 0}
        return self.queue.enqueue(_TASKS[task], *args, **options)

    async def enqueue_bulk(self, task: str, args: Sequence[Any], n: int, deadline: float) -> int:
        """``Queue.enqueue_many`` in chunks of 1,000."""
        options = {} if task in _KEEP else {"result_ttl": 0}
        done = 0
        for size in chunks(n):
            if time.monotonic() > deadline:
                break
            data = [
                Queue.prepare_data(_TASKS[task], args=tuple(args), **options)  # type: ignore[arg-type]
                for _ in range(size)
            ]
            self.queue.enqueue_many(data)
            done += size
        return done

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """``Job.latest_result(timeout=...)`` (blocks on the job's result stream)."""
        result = handle.latest_result(timeout=max(1, int(timeout_s)))
        if result is None:
            raise TimeoutError("no result")
        return result.return_value


class RQSimpleAdapter(RQAdapter):
    """RQ with SimpleWorker (jobs run in the worker's own process)."""

    name = "rq-simple"
    label = "RQ (SimpleWorker)"
    settings = (
        "`SimpleWorker` (README 'Notes on Performance': no fork, for jobs of a few ms), from "
        "the same worker script",
        "2 children = 2 worker processes (one job at a time each)",
        "noop/cpu jobs `result_ttl=0` (result not kept); log level WARNING",
    )
    simple = True


ADAPTERS: dict[str, type[Adapter]] = {"rq": RQAdapter, "rq-simple": RQSimpleAdapter}


def _worker(simple: bool) -> None:
    """The worker script: this module (the tasks) is imported before the worker forks."""
    connection = Redis.from_url(redis_url())
    queue = Queue("bench", connection=connection)
    worker_class = SimpleWorker if simple else Worker
    worker = worker_class([queue], connection=connection)
    worker.work(logging_level="WARNING")


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    # Import the module under its own name, so the jobs' functions resolve to the preloaded ones.
    import importlib

    importlib.import_module("benchmarks.adapters.rq_adapter")._worker("--simple" in sys.argv)
