"""A sink's outbox: failed sends are retried in order, refused ones dropped (no network)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from errands.observe import alert_sinks
from errands.observe.alert_sinks import Action, Outbox, Request, Webhook


class FlakySend:
    """A sender that fails with `errors` in turn, then takes every request."""

    def __init__(self, *errors: Exception, until: int = 0) -> None:
        self.errors = list(errors)
        self.taken: list[bytes] = []
        self.all_taken = threading.Event()  # set once `until` requests were taken
        self._until = until

    def __call__(self, request: Request, timeout_s: float) -> int:
        if self.errors:
            raise self.errors.pop(0)
        self.taken.append(request.body)
        if len(self.taken) >= self._until:
            self.all_taken.set()
        return 202


def _run(send: FlakySend, items: list[tuple[str, Action]]) -> tuple[list[tuple[str, str]], int]:
    delivered: list[tuple[str, str]] = []

    async def scenario() -> int:
        all_in = asyncio.Event()

        def note(sink: str, key: str, action: Action) -> None:
            delivered.append((key, action))
            if len(delivered) == len(items):
                all_in.set()

        box = Outbox(Webhook("http://127.0.0.1:9/"), note, send)
        for key, action in items:
            box.add(key, action, Request("http://127.0.0.1:9/", f"{key} {action}".encode(), {}))
        box.add(*items[0], Request("http://127.0.0.1:9/", b"again", {}))  # already waiting
        stopping = asyncio.Event()
        running = asyncio.create_task(box.run(stopping))
        await asyncio.wait_for(all_in.wait(), timeout=10)
        stopping.set()
        await running
        return box.failures

    return delivered, asyncio.run(scenario())


def test_a_send_that_fails_is_retried_before_the_next_one_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alert_sinks, "RETRY_FIRST_S", 0.01)
    send = FlakySend(ConnectionRefusedError("down"), OSError("HTTP 503"))
    delivered, failures = _run(send, [("a", "trigger"), ("a", "resolve")])
    assert delivered == [("a", "trigger"), ("a", "resolve")]
    assert send.taken == [b"a trigger", b"a resolve"]
    assert failures == 2


def test_a_request_the_receiver_refuses_for_good_is_dropped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(alert_sinks, "RETRY_FIRST_S", 0.01)
    send = FlakySend(alert_sinks._Refused("HTTP 400: bad routing key"))
    delivered, failures = _run(send, [("a", "trigger"), ("b", "trigger")])
    assert delivered == [("a", "trigger"), ("b", "trigger")]
    assert send.taken == [b"b trigger"]
    assert failures == 0
    assert "refused the trigger of a for good (HTTP 400: bad routing key)" in caplog.text


def test_an_app_on_the_memory_broker_alerts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from errands import App
    from errands.broker.types import Outcome
    from errands.observe.alerts import AlertEvaluator, DeadJobs, MemoryAlertStore
    from errands.testing import MemoryBroker

    app = App(broker=MemoryBroker())

    @app.task(name="doomed", max_retries=0)
    def doomed() -> None: ...

    app.alerts(DeadJobs(quiet=0), sinks=[Webhook("http://127.0.0.1:9/")], every=0.1)
    send = FlakySend(until=2)

    async def scenario() -> None:
        evaluator = AlertEvaluator(app, send=send)
        assert isinstance(evaluator.store, MemoryAlertStore)
        await evaluator.step()  # leads; the baseline
        doomed.delay()
        fetched = await app.broker.fetch("default", 1, 10_000, "w")
        [job] = fetched.jobs
        await app.broker.ack("default", [Outcome(job.id, job.token, "failed", b"{}")])
        await evaluator.step()  # opens the incident, and resolves it at the next (quiet 0)
        [box] = evaluator.outboxes.values()
        assert len(box) == 1
        stopping = asyncio.Event()
        sender = asyncio.create_task(box.run(stopping))
        await evaluator.step()
        assert await asyncio.to_thread(send.all_taken.wait, 10)
        stopping.set()
        await sender

    asyncio.run(scenario())
    assert [json.loads(body)["event"] for body in send.taken] == ["trigger", "resolve"]
