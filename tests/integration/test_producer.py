"""The producer API against real Redis: delay, apply_async, idempotency, results, errors."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from typing import Any, cast

import pytest
import redis

from errands import (
    App,
    ArgumentError,
    BrokerUnavailable,
    ConfigurationError,
    JobCancelled,
    ResultTimeoutError,
)
from errands.broker.redis import RedisBroker


def test_delay_queues_a_job_that_reports_queued(app: App) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(1, 2)
    assert result.state == "queued"
    assert app.inspector.queue("default").ready == 1


def test_a_datetime_argument_is_refused_with_its_path(app: App) -> None:
    @app.task
    def remind(user: int, when: object) -> None: ...

    with pytest.raises(ArgumentError, match=r'args\[1\]\["when"\] is a datetime: pass an ISO 8601'):
        remind.delay(1, {"when": dt.datetime.now(dt.UTC)})
    assert app.inspector.queue("default").ready == 0


def test_the_same_idempotency_key_returns_the_first_job(app: App) -> None:
    @app.task
    def welcome(user: int) -> None: ...

    first = welcome.apply_async((42,), idempotency_key="welcome:42")
    second = welcome.apply_async((42,), idempotency_key="welcome:42")
    assert second.id == first.id
    assert app.inspector.queue("default").ready == 1


def test_countdown_schedules_the_job(app: App) -> None:
    @app.task
    def later() -> None: ...

    assert later.apply_async(countdown=60).state == "scheduled"


def test_get_times_out_with_a_clear_error_when_nobody_runs_the_job(app: App) -> None:
    @app.task
    def slow() -> None: ...

    with pytest.raises(ResultTimeoutError, match=re.escape("still queued after 0.2s")):
        slow.delay().get(timeout=0.2)


def test_an_unreachable_redis_says_how_to_fix_it() -> None:
    app = App("redis://127.0.0.1:1/0")

    @app.task
    def noop() -> None: ...

    with pytest.raises(
        BrokerUnavailable, match=re.escape("cannot reach Redis at redis://127.0.0.1:1/0")
    ):
        noop.delay()


def test_max_retries_none_is_refused() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="retry forever"):
        app.task(max_retries=cast("int", None))(lambda: None)


def test_enqueue_many_sends_every_job_in_order_across_queues(app: App) -> None:
    @app.task(queue="a")
    def first(i: int) -> None: ...

    @app.task(queue="b")
    def second(i: int) -> None: ...

    signatures = [(first if i % 3 else second).s(i) for i in range(2500)]
    handles = app.enqueue_many(signatures)
    assert [h.queue for h in handles] == [s.task.options.queue for s in signatures]
    assert len({h.id for h in handles}) == 2500
    assert (app.inspector.queue("a").ready, app.inspector.queue("b").ready) == (
        1666,
        834,
    )


def test_enqueue_many_loads_the_library_when_the_server_lacks_it(app: App) -> None:
    from errands.broker.redis.library import library_name

    @app.task
    def noop(i: int) -> None: ...

    app.broker.client.execute_command("FUNCTION", "DELETE", library_name())  # type: ignore[attr-defined]
    handles = app.enqueue_many([noop.s(i) for i in range(10)])
    assert app.inspector.queue("default").ready == len(handles) == 10


def test_a_bad_argument_anywhere_in_a_bulk_enqueue_sends_nothing(app: App) -> None:
    @app.task
    def noop(i: int) -> None: ...

    signatures = [noop.s(i) for i in range(1500)] + [noop.s(dt.date.today())]  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match=r"args\[0\] is a date"):
        app.enqueue_many(signatures)
    assert app.inspector.queue("default").ready == 0


def test_a_result_wait_reads_after_subscribing_on_the_same_connection(
    app: App, redis_url: str
) -> None:
    """One round trip before a wait sleeps, and still no lost wake-up.

    The read of the job's state follows SUBSCRIBE on the subscribed connection itself (RESP3),
    so an ack after the read is published to a channel already listened to.
    """

    @app.task
    def slow() -> None: ...

    handle = slow.delay()
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            handle.get(timeout=10)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    observer = redis.Redis.from_url(redis_url)
    # Only the wait's connection counts: a shared server may have subscribers of its own.
    before = {c["id"] for c in observer.client_list()}
    waiter = threading.Thread(target=wait)
    waiter.start()
    channel = cast("RedisBroker", app.broker).keys("default").result_channel(handle.id)
    deadline = time.monotonic() + 10
    while observer.pubsub_numsub(channel)[0][1] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    subscribed = [c for c in observer.client_list() if c["sub"] != "0" and c["id"] not in before]
    assert [(c["resp"], c["cmd"]) for c in subscribed] == [("3", "fcall_ro")]
    handle.cancel()  # publishes the outcome: the sleeping wait wakes
    waiter.join(timeout=10)
    observer.close()
    assert [type(e) for e in outcome] == [JobCancelled]


def test_a_forked_child_waits_for_results_on_a_connection_of_its_own(app: App) -> None:
    @app.task
    def noop() -> None: ...

    def waiting_connection_id() -> int:
        """Wait for a cancelled job, then ask Redis which connection the wait used."""
        handle = noop.delay()
        handle.cancel()
        with pytest.raises(JobCancelled):
            handle.get(timeout=5)
        subscriber = cast("RedisBroker", app.broker)._waits.subscriber()
        assert subscriber is not None
        connection: Any = subscriber.connection
        connection.send_command("CLIENT", "ID")
        return int(connection.read_response())

    parent_id = waiting_connection_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, then leave without cleanup
        try:
            os.write(write, str(waiting_connection_id()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id = int(os.read(read, 64) or b"0")
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id not in (0, parent_id)
    assert waiting_connection_id() == parent_id  # the parent's is still its own, and works
