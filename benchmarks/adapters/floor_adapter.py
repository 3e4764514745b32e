"""The floor: a bare redis-py LPUSH/BRPOP loop, measured beside the task queues.

It is not a task queue: no acks (a job popped by a worker that dies is lost), no leases, no
retries, no time limits, no result store beyond one list per waited-for job. It shows what
this machine, this Redis and a Python process can do at all, so that every other row reads
against it: a task queue cannot be quicker than this, only closer to it.

Settings:
- producer: one ``LPUSH`` of a JSON ``[id, task, args]`` per job; bulk: one ``LPUSH`` of 1,000;
- worker: one process per child, each ``BRPOP``-ing the list (no polling) and running the same
  task bodies as everyone else;
- results: only the echo task's, ``LPUSH``-ed to a list of the job's own that the producer
  ``BRPOP``-s (the list is gone once read);
- async tasks: none (a bare loop has no event loop).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import redis

from benchmarks.adapters.base import (
    Adapter,
    chunks,
    cpu_body,
    echo_body,
    key_prefix,
    noop_body,
    redis_url,
)

__all__ = ["FloorAdapter", "main"]


def _queue_key() -> str:
    return f"{key_prefix()}floor:queue"


def _result_key(job_id: str) -> str:
    return f"{key_prefix()}floor:result:{job_id}"


_TASKS: dict[str, Callable[..., Any]] = {"noop": noop_body, "echo": echo_body, "cpu": cpu_body}


def main() -> None:
    """A worker process: pop, run, and hand back the echo task's value; until killed."""
    client = redis.Redis.from_url(redis_url())
    queue = _queue_key()
    while True:
        popped = client.brpop([queue], timeout=1)
        if popped is None:
            continue
        job_id, task, args = json.loads(popped[1])
        value = _TASKS[task](*args)
        if task == "echo":
            client.lpush(_result_key(job_id), json.dumps(value))


class FloorAdapter(Adapter):
    """A bare redis-py loop, from the project's virtual environment."""

    name = "floor"
    label = "floor: bare redis-py"
    packages = ("redis", "hiredis")
    namespaced = True
    bulk_api: ClassVar[str | None] = "one LPUSH of 1,000 jobs"
    no_async_reason: ClassVar[str | None] = "a bare loop has no event loop"
    settings = (
        "not a task queue: no acks, leases, retries, time limits or result store; what the "
        "machine can do at all",
        "producer: one LPUSH of a JSON [id, task, args] per job; bulk: one LPUSH of 1,000",
        "worker: one process per child, BRPOP (no polling); the echo task's value LPUSH-ed to "
        "a list of the job's own, which the producer BRPOP-s",
    )

    def __init__(self) -> None:
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        """The producer's connection."""
        if self._client is None:
            self._client = redis.Redis.from_url(redis_url())
        return self._client

    def worker_argvs(self, kind: str, children: int) -> list[list[str]]:
        """One process per child."""
        return [[sys.executable, "-m", __name__] for _ in range(children)]

    async def connect(self) -> None:
        """Open the producer's connection."""
        self.client.ping()

    async def send(self, task: str, args: Sequence[Any] = ()) -> str:
        """One LPUSH; the handle is the job id."""
        job_id = uuid.uuid4().hex
        self.client.lpush(_queue_key(), json.dumps([job_id, task, list(args)]))
        return job_id

    async def enqueue_bulk(self, task: str, args: Sequence[Any], n: int, deadline: float) -> int:
        """One LPUSH per 1,000 jobs."""
        done = 0
        for size in chunks(n):
            if time.monotonic() > deadline:
                break
            jobs = [json.dumps([uuid.uuid4().hex, task, list(args)]) for _ in range(size)]
            self.client.lpush(_queue_key(), *jobs)
            done += size
        return done

    async def result(self, handle: Any, timeout_s: float) -> Any:
        """BRPOP on the job's own result list."""
        popped = self.client.brpop([_result_key(handle)], timeout=timeout_s)
        if popped is None:
            raise TimeoutError(f"no result for job {handle} within {timeout_s:g}s")
        return json.loads(popped[1])

    async def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            self._client.close()


ADAPTERS: dict[str, type[Adapter]] = {"floor": FloorAdapter}

if __name__ == "__main__":
    main()
