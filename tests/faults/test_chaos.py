"""Chaos: workers killed at random under load lose no job, and every job ends succeeded.

Two workers (two children each, a 2 s lease) drain N `count` jobs while, every 1.5 to 2.5 s,
one of them picked at random is SIGKILLed with all its children at once (a crash of its
machine) and a replacement is started at once. The jobs the dead worker held (running, or
queued in its children) come back when their leases expire, and a live worker reaps them.
Once the killing stops, exactly N jobs have succeeded: none is dead, failed, still queued or
missing, and each ran at least once. A job may run more than once (it was running when its
worker died, or its worker died before its ack reached Redis): such runs are counted and
reported, never hidden. Nothing the workers started outlives them.

``ERRANDS_CHAOS_SECONDS`` (default 15) and ``ERRANDS_CHAOS_JOBS`` (default 3000) size the run;
the full run is ``ERRANDS_CHAOS_SECONDS=60 ERRANDS_CHAOS_JOBS=20000``. ``ERRANDS_CHAOS_SEED``
replays the kills of an earlier run (each run prints its seed); ``ERRANDS_CHAOS_JOB_SECONDS``
sets how long each job takes (by default the load lasts about the chaos window).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.faults.fault_app import FaultTasks, runs_key
from tests.faults.servers import RedisServer
from tests.integration.workers import WorkerProcess, Workers, process_gone, wait_until

from errands import AsyncResult
from errands.broker.views import QueueSummary

CHAOS_S = float(os.environ.get("ERRANDS_CHAOS_SECONDS", "15"))
CHAOS_JOBS = int(os.environ.get("ERRANDS_CHAOS_JOBS", "3000"))
SEED = int(os.environ.get("ERRANDS_CHAOS_SEED", str(random.SystemRandom().randrange(2**32))))

LEASE_S = 2.0
CHILDREN = 2
WORKER_COUNT = 2
WORKER_ARGS = ("-c", str(CHILDREN), "--lease", f"{LEASE_S:g}")
WORKER_ENV = {"ERRANDS_TEST_LEASE": f"{LEASE_S:g}"}
KILL_EVERY_S = (1.5, 2.5)
# Each job sleeps so that the children, all busy, would take about the chaos window to drain
# the load (the kills slow them, so it lasts a little longer): every kill lands on jobs in
# flight. At 2 ms a job, 20,000 jobs drain in about 16 s on two CPUs, a quarter of the full
# run. The cap keeps jobs short: one seen running across two kills of its workers is rightly
# dead (max_stalls=1), and this test is about healthy jobs.
JOB_S = float(
    os.environ.get("ERRANDS_CHAOS_JOB_SECONDS")
    or min(0.05, max(0.002, 0.8 * WORKER_COUNT * CHILDREN * CHAOS_S / CHAOS_JOBS))
)
QUEUE = "default"
SERVE_TIMEOUT_S = 30.0  # a worker's start: imports, two children, Redis
DRAIN_TIMEOUT_S = LEASE_S * 3 + 60  # the last leases expire, are reaped, and their jobs run
GONE_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0
STATE_CHUNK = 1000
SHOWN = 10  # how many bad jobs, or worker log lines, a message lists


@dataclass(frozen=True)
class Kill:
    """One kill of the chaos loop: when, whom, and how far the jobs had got."""

    at_s: float  # since the chaos began
    pids: tuple[int, ...]  # the supervisor and the children it had
    serving: bool  # it had logged "serving" (else it died while starting)
    succeeded: int  # jobs succeeded just after it


def describe(info: QueueSummary) -> str:
    """The counts and counters of a queue, for a failure message."""
    return (
        f"ready={info.ready} delayed={info.delayed} active={info.active} dead={info.dead} "
        f"stats={dict(sorted(info.stats.items()))}"
    )


def chaos(
    workers: Workers, live: list[WorkerProcess], tasks: FaultTasks, rng: random.Random
) -> list[Kill]:
    """For CHAOS_S seconds, SIGKILL a random one of `live` now and then, and replace it."""
    kills: list[Kill] = []
    began = time.monotonic()
    next_kill = began + rng.uniform(*KILL_EVERY_S)
    while next_kill < began + CHAOS_S:
        time.sleep(max(0.0, next_kill - time.monotonic()))
        slot = rng.randrange(len(live))
        victim = live[slot]
        assert victim.running(), f"worker {victim.pid} exited by itself:\n{victim.log()}"
        pids = (victim.pid, *victim.children())
        serving = "serving" in victim.log()
        victim.kill_all()
        live[slot] = workers.spawn(*WORKER_ARGS, env=WORKER_ENV)  # the farm stops it at the end
        succeeded = tasks.app.inspector.queue(QUEUE).stats.get("succeeded", 0)
        kills.append(Kill(time.monotonic() - began, pids, serving, succeeded))
        next_kill += rng.uniform(*KILL_EVERY_S)
    return kills


def wait_settled(tasks: FaultTasks, total: int) -> QueueSummary:
    """The queue once every job succeeded or ended dead, or as it is after DRAIN_TIMEOUT_S."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        info = tasks.app.inspector.queue(QUEUE)
        if info.stats.get("succeeded", 0) + info.dead >= total or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def runs_by_label(server: RedisServer, namespace: str) -> dict[str, int]:
    """How many times each `count` job started, by its label."""
    client = server.client()
    try:
        raw: dict[bytes, bytes] = client.hgetall(runs_key(namespace))  # type: ignore[assignment]
    finally:
        client.close()
    return {label.decode(): int(runs) for label, runs in raw.items()}


def not_succeeded(handles: list[AsyncResult[str]]) -> list[tuple[str, str]]:
    """The (id, state) of every job whose state is not succeeded, read a chunk at a time."""
    bad: list[tuple[str, str]] = []
    for start in range(0, len(handles), STATE_CHUNK):
        for handle in handles[start : start + STATE_CHUNK]:
            state = handle.state
            if state != "succeeded":
                bad.append((handle.id, state))
    return bad


def log_troubles(started: list[WorkerProcess]) -> list[str]:
    """The workers' log lines that show a traceback or an error, each with its log's name."""
    return [
        f"{worker.log_path.name}: {line}"
        for worker in started
        for line in worker.log().splitlines()
        if any(word in line for word in ("Traceback", "ERROR", "CRITICAL"))
    ]


def processes_of(namespace: str) -> list[int]:
    """The pids of live processes whose environment names `namespace` (only workers do)."""
    marker = f"ERRANDS_TEST_NAMESPACE={namespace}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone already, or not ours to read
            continue
        if marker in environ.split(b"\0") and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(CHAOS_S * 3 + 120)
def test_two_workers_killed_at_random_lose_no_job_and_run_each_to_success(
    server: RedisServer,
    tasks: FaultTasks,
    workers: Workers,
    namespace: str,
    record_property: Callable[[str, object], None],
) -> None:
    total = CHAOS_JOBS
    print(f"\nchaos: seed {SEED}, {JOB_S * 1000:.1f} ms a job (ERRANDS_CHAOS_SEED replays it)")
    handles = tasks.app.enqueue_many(tasks.count.s(f"job-{i}", JOB_S) for i in range(total))
    assert tasks.app.inspector.queue(QUEUE).ready == total

    live = [workers.spawn(*WORKER_ARGS, env=WORKER_ENV) for _ in range(WORKER_COUNT)]
    for worker in live:
        worker.wait_for_log("serving", SERVE_TIMEOUT_S)
    began = time.monotonic()
    kills = chaos(workers, live, tasks, random.Random(SEED))
    for worker in live:  # the last replacements: each must come up, and still serve
        worker.wait_for_log("serving", SERVE_TIMEOUT_S)
        assert worker.running(), f"worker {worker.pid} exited by itself:\n{worker.log()}"
    info = wait_settled(tasks, total)
    settled_s = time.monotonic() - began

    counts = runs_by_label(server, namespace)
    duplicates = sum(runs - 1 for runs in counts.values())
    reruns = sum(1 for runs in counts.values() if runs > 1)
    troubles = log_troubles(workers.started)
    report = (
        f"chaos: {total} jobs, {len(kills)} kills in {CHAOS_S:g} s "
        f"({sum(not k.serving for k in kills)} before serving), {duplicates} duplicate runs "
        f"({reruns} jobs ran more than once), stalled {info.stats.get('stalled', 0)}, "
        f"lost {info.stats.get('lost', 0)}; {kills[-1].succeeded if kills else 0} succeeded "
        f"by the last kill, {info.stats.get('succeeded', 0)} after {settled_s:.1f} s; "
        f"{len(workers.started)} workers started, {len(troubles)} error lines in their logs"
    )
    print(report)
    record_property("chaos", report)
    for line in troubles[:SHOWN]:
        print(f"chaos: {line}")

    assert info.stats.get("succeeded", 0) == total, describe(info)
    assert info.dead == 0, describe(info)
    assert info.stats.get("failed", 0) == 0, describe(info)
    assert (info.ready, info.delayed, info.active) == (0, 0, 0), describe(info)
    bad = not_succeeded(handles)
    assert not bad, f"{len(bad)} jobs did not succeed: {bad[:SHOWN]}"
    expected = {f"job-{i}" for i in range(total)}
    missing = sorted(expected - counts.keys())
    assert not missing, f"{len(missing)} jobs never ran: {missing[:SHOWN]}"
    assert counts.keys() == expected, f"runs of no job: {sorted(counts.keys() - expected)}"
    assert all(runs >= 1 for runs in counts.values())
    assert duplicates >= 0

    killed = [pid for kill in kills for pid in kill.pids]
    wait_until(lambda: all(process_gone(pid) for pid in killed), GONE_TIMEOUT_S, "the killed")
    for worker in live:  # the survivors stop cleanly: SIGTERM, exit 0
        worker.signal(signal.SIGTERM)
        assert worker.wait(STOP_TIMEOUT_S) == 0, worker.log()
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while (strays := processes_of(namespace)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in strays:  # a child its supervisor's death left behind; this test started it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not strays, f"processes of this test's workers outlived them: {strays}"
