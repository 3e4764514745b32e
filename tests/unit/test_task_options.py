"""Task and call options: bad values are refused when the task is defined or the call is made.

Every app here points at a port where nothing listens: a check that needed Redis would fail with
BrokerUnavailable instead of the error the test expects.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import socket
from typing import Any

import pytest

from errands import App, ConfigurationError

NOWHERE = "redis://127.0.0.1:1/0"


@pytest.fixture
def app() -> App:
    return App(NOWHERE)


def noop() -> None: ...


@pytest.mark.parametrize("priority", [-1, 10, 2.5, True, "5"])
def test_a_priority_outside_0_to_9_is_refused(app: App, priority: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"priority must be an int from 0 to 9 \(9 runs"):
        app.task(priority=priority)(noop)


def test_a_call_with_a_priority_outside_0_to_9_is_refused(app: App) -> None:
    task = app.task(noop)
    with pytest.raises(ConfigurationError, match="priority must be an int from 0 to 9"):
        task.apply_async(priority=11)


@pytest.mark.parametrize(("soft", "hard"), [(60, 60), (90, 60)])
def test_a_soft_limit_not_below_the_hard_limit_is_refused(
    app: App, soft: float, hard: float
) -> None:
    expected = f"soft_time_limit ({float(soft)}s) must be below time_limit ({float(hard)}s)"
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        app.task(soft_time_limit=soft, time_limit=hard)(noop)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"soft_time_limit": 0}, "soft_time_limit"),
        ({"soft_time_limit": -1}, "soft_time_limit"),
        ({"soft_time_limit": math.nan}, "soft_time_limit"),
        ({"time_limit": 0}, "time_limit"),
        ({"soft_time_limit": 1, "time_limit": -2}, "time_limit"),
    ],
)
def test_a_time_limit_that_is_not_positive_is_refused(
    app: App, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"{named} must be a positive number of seconds"):
        app.task(**options)(noop)


def test_a_lone_hard_limit_below_the_default_soft_limit_brings_the_soft_limit_down(
    app: App,
) -> None:
    task = app.task(time_limit=10)(noop)
    assert task.options.soft_time_limit < task.options.time_limit == 10


def test_a_lone_soft_limit_above_the_default_hard_limit_raises_the_hard_limit(app: App) -> None:
    task = app.task(soft_time_limit=1_000)(noop)
    assert task.options.time_limit > task.options.soft_time_limit == 1_000


def test_an_unknown_task_option_is_refused_with_the_list_of_options(app: App) -> None:
    with pytest.raises(ConfigurationError) as caught:
        app.task(retries=3, timeout=5)(noop)  # type: ignore[call-overload]
    message = str(caught.value)
    assert message.startswith("unknown task option(s) retries, timeout; the options are name,")
    for option in ("max_retries", "soft_time_limit", "time_limit", "priority", "bind"):
        assert option in message


def test_a_second_task_with_the_same_name_is_refused(app: App) -> None:
    app.task(name="emails.send")(noop)
    with pytest.raises(
        ConfigurationError,
        match=re.escape("a task named 'emails.send' is already registered: give one of them"),
    ):
        app.task(name="emails.send")(lambda: None)
    assert list(app.tasks) == ["emails.send"]


def test_the_default_name_is_the_module_and_function(app: App) -> None:
    assert app.task(noop).name == f"{__name__}.noop"


def test_every_default_is_finite(app: App) -> None:
    options = app.task(noop).options
    assert options.retry.max_retries == 3
    assert options.priority == 0
    assert 0 < options.soft_time_limit < options.time_limit < math.inf
    assert 0 < options.result_ttl < math.inf
    assert 0 < options.idempotency_ttl < math.inf
    assert 0 <= options.max_stalls < 10
    assert 0 < options.retry.backoff_max_s < math.inf
    assert options.retry.jitter


def test_an_unknown_call_option_says_what_the_call_options_are(app: App) -> None:
    task = app.task(noop)
    with pytest.raises(ConfigurationError) as caught:
        task.apply_async(retries=2)
    message = str(caught.value)
    assert message.startswith(
        "unknown call option(s) retries: task arguments go in args= and kwargs=; "
        "call options are countdown, eta, priority, queue,"
    )
    assert "idempotency_key" in message
    assert "job_id" in message


def test_a_naive_eta_is_refused(app: App) -> None:
    task = app.task(noop)
    with pytest.raises(ConfigurationError, match="eta must be an aware datetime"):
        task.apply_async(eta=dt.datetime(2030, 1, 1))


def test_countdown_and_eta_together_are_refused(app: App) -> None:
    task = app.task(noop)
    eta = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    with pytest.raises(ConfigurationError, match="give countdown or eta, not both"):
        task.apply_async(countdown=10, eta=eta)


def test_an_unknown_idempotency_mode_is_refused(app: App) -> None:
    task = app.task(noop)
    with pytest.raises(ConfigurationError, match="idempotency_mode must be 'window' or"):
        task.apply_async(idempotency_key="k", idempotency_mode="forever")


def test_building_an_app_and_its_tasks_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("App tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    app = App("redis://unreachable.invalid:6379/0")
    task = app.task(queue="emails", priority=5)(noop)
    task.s().set(countdown=5)
    assert repr(app.broker).startswith("RedisBroker(")  # created, not connected
    app.close()


def test_a_negative_hard_limit_alone_is_reported_as_the_hard_limit(app: App) -> None:
    with pytest.raises(ConfigurationError, match="time_limit must be a positive number") as e:
        app.task(time_limit=-5)(noop)
    assert str(e.value).startswith("time_limit")


def test_an_infinite_hard_limit_is_refused(app: App) -> None:
    with pytest.raises(ConfigurationError):
        app.task(time_limit=math.inf)(noop)


def test_an_infinite_result_ttl_is_refused_when_the_task_is_defined(app: App) -> None:
    with pytest.raises(ConfigurationError):
        app.task(result_ttl=math.inf)(noop)
