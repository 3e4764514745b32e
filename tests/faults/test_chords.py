"""A chord always ends: a member that ends dead, whatever killed it, fails it, naming the member.

Before, only a member that raised failed its chord: one whose process died, that ran past its
hard limit, returned what JSON cannot hold, stalled, or ran out of attempts in Redis left the
callback waiting for a week. And redriving a dead member: the chord stays failed, the member
runs on its own, and its result is kept as any job's.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.probes import wait_seen_running
from tests.faults.servers import RedisServer
from tests.integration.worker_app import gate_key
from tests.integration.workers import Events, Workers

from errands import App, AsyncResult, JobFailed, TaskContext, chord

LEASE = ("--lease", "2")
LEASE_ENV = {"ERRANDS_TEST_LEASE": "2"}
# A chord fails within this of its member's death: at once after an ack, else at the next
# maintenance interval (5 s), plus a lease for a member whose worker died.
FAILS_WITHIN_S = 15.0


def expect_chord_failure(callback: AsyncResult[Any], member_id: str, cause: str) -> None:
    with pytest.raises(JobFailed, match="ChordFailed") as failure:
        callback.get(timeout=FAILS_WITHIN_S)
    assert f"member {member_id} failed with {cause}" in failure.value.error_message


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("member", "cause"),
    [
        ("lost", "errands.errors.WorkerLost"),
        ("overrun", "errands.errors.TimeLimitExceeded"),
        ("not_json", "errands.errors.ArgumentError"),
    ],
)
def test_a_member_that_dies_without_raising_fails_its_chord(
    tasks: FaultTasks, workers: Workers, member: str, cause: str
) -> None:
    workers.start("-c", "2", *LEASE, env=LEASE_ENV)
    bad = getattr(tasks, member)
    sent = chord([tasks.add.s(1, 1), bad.s(), tasks.add.s(2, 2)], tasks.mark.partial()).delay()
    expect_chord_failure(sent.callback, sent.members.results[1].id, cause)
    assert [sent.members.results[i].get(timeout=10) for i in (0, 2)] == [2, 4]


@pytest.mark.timeout(60)
def test_a_member_that_runs_out_of_attempts_in_redis_fails_its_chord(
    server: RedisServer, namespace: str, workers: Workers
) -> None:
    # The producer's release allows no retry; the worker's allows three. Redis counts the
    # attempts the job was sent with, and ends it dead although the worker asked for a retry.
    producer = App(server.url, namespace=namespace)

    @producer.task(name="always_fails", bind=True, max_retries=0)
    def always_fails(ctx: TaskContext) -> None: ...

    @producer.task(name="mark", bind=True)
    def mark(ctx: TaskContext, label: str) -> str:
        return label  # never runs here: the worker's own runs

    workers.start("-c", "1", *LEASE, env=LEASE_ENV)
    sent = chord([always_fails.s()], mark.partial()).delay()
    expect_chord_failure(sent.callback, sent.members.results[0].id, "ValueError")
    producer.close()


@pytest.mark.timeout(60)
def test_a_member_that_stalls_to_death_fails_its_chord(
    tasks: FaultTasks, workers: Workers, events: Events, namespace: str, server: RedisServer
) -> None:
    sent = chord([tasks.slow.s(20)], tasks.mark.partial()).delay()
    member = sent.members.results[0]
    client = server.client()
    for run in (1, 2):  # max_stalls=1: the second stall is one too many
        worker = workers.start("-c", "1", *LEASE, env=LEASE_ENV)
        events.wait_for(run, event="started", job=member.id, timeout_s=15)
        wait_seen_running(client, namespace, member.id)
        worker.kill_all()
    workers.start("-c", "1", *LEASE, env=LEASE_ENV)  # reaps the second lease: JobStalled
    expect_chord_failure(sent.callback, member.id, "errands.errors.JobStalled")
    client.close()


@pytest.mark.timeout(60)
def test_redriving_a_dead_member_runs_it_alone_and_the_chord_stays_failed(
    tasks: FaultTasks, workers: Workers, server: RedisServer, namespace: str
) -> None:
    workers.start("-c", "2", *LEASE, env=LEASE_ENV)
    sent = chord([tasks.flaky.s("fix"), tasks.add.s(1, 2)], tasks.mark.partial()).delay()
    member = sent.members.results[0]
    expect_chord_failure(sent.callback, member.id, "ValueError: gate fix is closed")
    server.command("SET", gate_key(namespace, "fix"), "1")  # the fix is deployed
    assert tasks.app.broker.redrive("default", [member.id]) == [member.id]
    assert member.get(timeout=15) == "fix"
    assert sent.callback.state == "failed"  # the callback never runs
    assert tasks.app.inspector.queue("default").ready == 0
