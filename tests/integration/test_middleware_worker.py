"""Middleware in a real worker: every hook fires once where it should, in the process it says.

A chain, a chord, a retried job, a dead job and a cancelled one run on a worker of one child;
the app's middleware records each hook call with its process. The producer (this test) sends
the jobs; the child runs them; the supervisor sends the chain's next step, hears of the dead
job, and starts and stops.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from errands import JobCancelled, JobFailed, chain, chord
from tests.integration.middleware_app import build, hooks_key
from tests.integration.workers import Workers, wait_until

APP = "tests.integration.middleware_app:app"


@pytest.mark.timeout(90)
def test_each_hook_fires_once_per_run_in_the_process_it_documents(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    app = build(redis_url, namespace)
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP)
    client = redis.Redis.from_url(redis_url)
    try:
        worker = farm.start("-c", "1", "--lease", "2")
        [child] = worker.children()
        t = app.tasks
        chained = chain(t["add"].s(1, 2), t["add"].partial(10)).delay()
        chorded = chord([t["add"].s(1, 1), t["add"].s(2, 2)], t["total"].partial()).delay()
        retried = t["fails_once"].delay()
        dead = t["always_fails"].delay()
        assert chained.get(timeout=20) == 13
        assert chorded.get(timeout=20) == 6
        assert retried.get(timeout=20) == 2
        with pytest.raises(JobFailed, match="KeyError"):
            dead.get(timeout=20)
        cancelled = t["stops"].delay()  # last: it holds the only child until it is cancelled
        wait_until(lambda: cancelled.state == "active", 20, "the cancelled job to start")
        cancelled.cancel()
        with pytest.raises(JobCancelled):
            cancelled.get(timeout=20)
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        farm.close()
        app.close()

    raw: list[bytes] = client.lrange(hooks_key(namespace), 0, -1)  # type: ignore[assignment]
    client.close()
    roles = {os.getpid(): "producer", worker.pid: "supervisor", child: "child"}
    calls: dict[str, Counter[tuple[Any, ...]]] = {}
    for event in map(json.loads, raw):
        seen = event.get("state", event.get("created", event.get("error")))
        call = (event["hook"], roles.get(event["pid"], "elsewhere"), seen)
        calls.setdefault(event["job"], Counter())[call] += 1

    Call = tuple[Any, ...]
    sent: dict[Call, int] = {
        ("before_enqueue", "producer", None): 1,
        ("after_enqueue", "producer", True): 1,
    }
    ran: dict[Call, int] = {
        ("before_execute", "child", None): 1,
        ("after_execute", "child", "succeeded"): 1,
    }
    first, second = chained.steps
    assert calls[first.id] == Counter({**sent, **ran})
    assert calls[second.id] == Counter(
        {
            ("before_enqueue", "supervisor", None): 1,  # the worker sends a chain's next step
            ("after_enqueue", "supervisor", True): 1,
            **ran,
        }
    )
    for member in chorded.members.results:
        assert calls[member.id] == Counter({**sent, **ran})
    # The callback passes before_enqueue when the chord starts; Redis enqueues it later.
    assert calls[chorded.id] == Counter({("before_enqueue", "producer", None): 1, **ran})
    assert calls[retried.id] == Counter(
        {
            **sent,
            ("before_execute", "child", None): 2,
            ("after_execute", "child", "retrying"): 1,
            ("after_execute", "child", "succeeded"): 1,
        }
    )
    assert calls[dead.id] == Counter(
        {
            **sent,
            ("before_execute", "child", None): 1,
            ("after_execute", "child", "failed"): 1,
            ("on_dead", "supervisor", "KeyError"): 1,
        }
    )
    assert calls[cancelled.id] == Counter(
        {
            **sent,
            ("before_execute", "child", None): 1,
            ("after_execute", "child", "cancelled"): 1,
        }
    )
    found = re.search(r"worker (\S+) serving", worker.log())
    assert found is not None
    assert calls[found.group(1)] == Counter(
        {("on_worker_start", "supervisor", None): 1, ("on_worker_stop", "supervisor", None): 1}
    )


@pytest.mark.timeout(90)
def test_a_middleware_that_raises_in_every_hook_loses_and_doubles_no_job(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    app = build(redis_url, namespace, broken=True)
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP)
    client = redis.Redis.from_url(redis_url)
    try:
        worker = farm.start("-c", "1", env={"ERRANDS_TEST_BROKEN_HOOKS": "1"})
        t = app.tasks
        chained = chain(t["add"].s(1, 2), t["add"].partial(10)).delay()
        retried = t["fails_once"].delay()
        dead = t["always_fails"].delay()
        assert chained.get(timeout=20) == 13
        assert retried.get(timeout=20) == 2
        with pytest.raises(JobFailed, match="KeyError"):
            dead.get(timeout=20)
        wait_until(lambda: "on_dead is broken" in worker.log(), 20, "on_dead to be called")
        worker.signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        farm.close()
        app.close()

    raw: list[bytes] = client.lrange(hooks_key(namespace), 0, -1)  # type: ignore[assignment]
    client.close()
    runs = Counter(
        (event["job"], event.get("state"))
        for event in map(json.loads, raw)
        if event["hook"] == "after_execute"
    )
    first, second = chained.steps
    assert runs == Counter(
        {
            (first.id, "succeeded"): 1,
            (second.id, "succeeded"): 1,
            (retried.id, "retrying"): 1,
            (retried.id, "succeeded"): 1,
            (dead.id, "failed"): 1,
        }
    ), "the recording middleware after the broken one saw each run once"
    log = worker.log()
    for hook in ("before_execute", "after_execute", "before_enqueue", "on_dead", "on_worker_start"):
        assert f"middleware Broken failed in {hook}" in log, hook
    assert "Traceback" in log  # each failure is logged with its traceback
