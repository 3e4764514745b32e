"""Alerts against real Redis, real workers and a local HTTP receiver the test runs.

One incident of 100 dead jobs, seen by two ``errands alerts`` processes, reaches the receiver as
one PagerDuty trigger and one resolve under one dedup_key; a takeover carries the incident on;
a receiver that is down, then up, gets the trigger once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from errands import App
from errands.broker.redis.alerts import alert_keys
from errands.observe.alerts import AlertEvaluator
from tests.integration.observe_app import ROUTING_KEY, alerting_app, build, kill_jobs, until
from tests.integration.receiver import Receiver
from tests.integration.workers import Workers, free_port, stop_cleanly, wait_until

pytestmark = pytest.mark.timeout(90)

APP_SPEC = "tests.integration.observe_app:app"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    yield got
    got.close()


def _incidents(client: redis.Redis, namespace: str) -> int:
    return int(client.hlen(alert_keys(namespace)[2]))


def test_100_dead_jobs_make_one_pagerduty_trigger_and_one_resolve_from_two_evaluators(
    redis_url: str, namespace: str, tmp_path: Path, receiver: Receiver, client: redis.Redis
) -> None:
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP_SPEC)
    env = {"ERRANDS_TEST_RECEIVER": receiver.url, "ERRANDS_TEST_QUIET": "2"}
    try:
        evaluators = [farm.spawn(env=env, command="alerts") for _ in range(2)]
        for evaluator in evaluators:
            evaluator.wait_for_log("alert evaluator")
        wait_until(
            lambda: any(" leads (fence" in e.log() for e in evaluators), 20, "an evaluator to lead"
        )
        farm.start("-c", "2")
        app = build(redis_url, namespace, events_maxlen=0)
        doomed = app.get_task("doomed")
        app.enqueue_many([doomed.s() for _ in range(100)])
        wait_until(lambda: app.inspector.queue("default").dead == 100, 30, "100 dead jobs")

        [trigger] = receiver.wait_for(1)
        assert trigger["routing_key"] == ROUTING_KEY
        assert trigger["event_action"] == "trigger"
        assert trigger["dedup_key"].startswith(f"errands:{namespace}:dead_jobs:default:")
        payload = trigger["payload"]
        assert payload["summary"] == "jobs are going dead in queue default"
        assert payload["severity"] == "error"
        assert payload["source"].startswith("errands@")
        assert payload["component"] == "default"
        assert payload["custom_details"]["queue"] == "default"
        assert payload["custom_details"]["count"] >= 1

        _, resolve = receiver.wait_for(2)
        assert resolve == {
            "routing_key": ROUTING_KEY,
            "event_action": "resolve",
            "dedup_key": trigger["dedup_key"],
        }
        wait_until(lambda: _incidents(client, namespace) == 0, 10, "the incident to be dropped")
        for evaluator in evaluators:
            stop_cleanly(evaluator)
        # Everything either evaluator could send was sent by now: one trigger, one resolve.
        assert len(receiver.posts) == 2
        leader = next(e for e in evaluators if "alert dead_jobs:default opened" in e.log())
        assert "alert dead_jobs:default resolved (it counted 100)" in leader.log()
        assert sum("opened" in e.log() for e in evaluators) == 1
        app.close()
    finally:
        farm.close()


def test_an_evaluator_that_takes_over_resolves_the_open_incident_without_a_second_trigger(
    redis_url: str, namespace: str, receiver: Receiver
) -> None:
    async def scenario() -> None:
        first_app = alerting_app(redis_url, namespace, receiver.url, 1.0)
        second_app = alerting_app(redis_url, namespace, receiver.url, 1.0)
        first = AlertEvaluator(first_app, owner="first", lease_s=1.0, renew_s=0.2)
        second = AlertEvaluator(second_app, owner="second", lease_s=1.0, renew_s=0.2)
        stop_first, stop_second = asyncio.Event(), asyncio.Event()
        running_first = asyncio.create_task(first.run(stop_first))
        await until(lambda: first.leading, 10, "the first evaluator to lead")
        running_second = asyncio.create_task(second.run(stop_second))
        await until(lambda: first.evaluations >= 1, 5, "the first evaluator's baseline")
        await kill_jobs(first_app, 5)
        await asyncio.to_thread(receiver.wait_for, 1)
        stop_first.set()  # before the quiet period ends: the incident is open
        await running_first
        await until(lambda: second.leading, 10, "the second evaluator to take over")
        posts = await asyncio.to_thread(receiver.wait_for, 2)
        stop_second.set()
        await running_second
        assert [p["event"] for p in posts] == ["trigger", "resolve"]
        assert posts[0]["dedup_key"] == posts[1]["dedup_key"]
        assert posts[1]["count"] == 5
        assert posts[1]["resolved_at"] is not None
        assert len(receiver.posts) == 2
        await first_app.broker.aclose()
        await second_app.broker.aclose()

    asyncio.run(scenario())


def test_a_receiver_that_is_down_then_up_gets_the_trigger_once(
    redis_url: str, namespace: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"

    async def scenario() -> Receiver:
        app = alerting_app(redis_url, namespace, url, 60.0)
        evaluator = AlertEvaluator(app, owner="only", lease_s=2.0, renew_s=0.5)
        stopping = asyncio.Event()
        running = asyncio.create_task(evaluator.run(stopping))
        await until(lambda: evaluator.evaluations >= 1, 10, "the evaluator's baseline")
        await kill_jobs(app, 3)
        box = evaluator.outboxes["webhook"]
        await until(lambda: box.failures >= 1, 10, "a refused connection")
        assert len(box) == 1  # still waiting, while evaluation goes on
        seen = evaluator.evaluations
        await until(lambda: evaluator.evaluations > seen + 2, 10, "more evaluations")
        up = Receiver(port)
        up.failing = 1  # up, but a 503 first: retried too
        try:
            await asyncio.to_thread(up.wait_for, 1)
            await until(lambda: len(box) == 0, 10, "the outbox to empty")
            stopping.set()
            await running
        finally:
            up.close()
        await app.broker.aclose()
        return up

    up = asyncio.run(scenario())
    assert [p["event"] for p in up.posts] == ["trigger"]
    assert up.refused == 1


def test_errands_beat_evaluates_the_alerts_an_app_declares(
    redis_url: str, namespace: str, tmp_path: Path, receiver: Receiver
) -> None:
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP_SPEC)
    env = {"ERRANDS_TEST_RECEIVER": receiver.url}
    try:
        beat = farm.spawn("--log-level", "debug", env=env, command="beat")
        # Its first evaluation is a baseline: deaths count from the next one on.
        wait_until(lambda: "alert evaluation 1:" in beat.log(), 30, "a first evaluation")
        app = build(redis_url, namespace, events_maxlen=0)
        asyncio.run(_kill_and_close(app))
        [trigger] = receiver.wait_for(1)
        assert trigger["event_action"] == "trigger"
        stop_cleanly(beat)
    finally:
        farm.close()


async def _kill_and_close(app: App) -> None:
    await kill_jobs(app, 2)
    await app.broker.aclose()


def _delivered(client: redis.Redis, namespace: str) -> dict[str, list[str]]:
    raw = client.hget(alert_keys(namespace)[2], "dead_jobs:default")
    found: dict[str, list[str]] = json.loads(raw)["delivered"] if raw else {}
    return found


def test_a_killed_leader_s_open_incident_is_resolved_by_the_next_without_a_second_trigger(
    redis_url: str, namespace: str, tmp_path: Path, receiver: Receiver, client: redis.Redis
) -> None:
    farm = Workers(redis_url, namespace, tmp_path, app_spec=APP_SPEC)
    env = {"ERRANDS_TEST_RECEIVER": receiver.url, "ERRANDS_TEST_QUIET": "3"}
    try:
        first = farm.spawn("--log-level", "debug", env=env, command="alerts")
        wait_until(lambda: "alert evaluation 1:" in first.log(), 30, "a first evaluation")
        second = farm.spawn(env=env, command="alerts")
        second.wait_for_log("alert evaluator")
        app = build(redis_url, namespace, events_maxlen=0)
        asyncio.run(_kill_and_close(app))
        [trigger] = receiver.wait_for(1)
        wait_until(
            lambda: _delivered(client, namespace) == {"pagerduty": ["trigger"]},
            10,
            "the leader to record the trigger",
        )
        first.kill_all()  # no resign: the lease runs out (15 s), then the second leads
        _, resolve = receiver.wait_for(2, timeout_s=40)
        assert resolve["event_action"] == "resolve"
        assert resolve["dedup_key"] == trigger["dedup_key"]
        assert " leads (fence" in second.log()
        wait_until(lambda: _incidents(client, namespace) == 0, 10, "the incident to be dropped")
        stop_cleanly(second)
        assert len(receiver.posts) == 2
    finally:
        farm.close()
