"""Limiter declarations, rates, record names and unique keys (no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from errands import App, ArgumentError, ConfigurationError, RateLimited
from errands.limits import Limiter, Rate, parse_rate
from errands.task import unique_key
from errands.testing import MemoryBroker, run_jobs


def _app() -> App:
    return App(broker=MemoryBroker())


@pytest.mark.parametrize(
    ("text", "count", "period_s"),
    [("100/m", 100, 60.0), ("20/s", 20, 1.0), ("5/10s", 5, 10.0), ("1000/h", 1000, 3600.0),
     (" 3 / d ", 3, 86400.0), ("2/1.5m", 2, 90.0)],
)  # fmt: skip
def test_a_rate_is_a_count_per_period(text: str, count: int, period_s: float) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.period_s) == (count, period_s)
    assert rate.interval_ms == pytest.approx(period_s * 1000 / count)


@pytest.mark.parametrize("text", ["100", "0/s", "10/w", "ten/s", "-1/s", "", "1/0s"])
def test_a_rate_that_does_not_parse_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"count/period|at least one"):
        parse_rate(text)


def test_a_rate_prints_as_it_is_written() -> None:
    assert [str(parse_rate(t)) for t in ("100/m", "5/10s")] == ["100/m", "5/10s"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({}, "limits nothing"), ({"rate": Rate(1, 1), "burst": 0}, "burst"),
     ({"concurrency": 0}, "concurrency"), ({"concurrency": True}, "concurrency"),
     ({"concurrency": 1, "key": "tenant"}, "key must be a function")],
)  # fmt: skip
def test_a_limiter_that_limits_nothing_or_wrongly_is_refused(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Limiter("x", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a|b", "a b", "x" * 101, "{tag}"])
def test_a_limiter_name_is_refused_when_it_would_break_a_record_name(name: str) -> None:
    with pytest.raises(ConfigurationError, match="limiter name"):
        Limiter(name, concurrency=1)


def test_keys_are_escaped_so_one_key_never_prefixes_another() -> None:
    limiter = Limiter("api", concurrency=1, key=lambda tenant: tenant)
    assert limiter.record(["a|b"], {}) == "api|a%7Cb"
    assert limiter.record(["a%7Cb"], {}) == "api|a%257Cb"
    assert Limiter("api", concurrency=1).record([1], {}) == "api|"


def test_a_key_function_that_fails_or_returns_a_non_key_is_refused_at_send() -> None:
    app = _app()
    app.limiter("per-tenant", rate="10/s", key=lambda tenant: tenant["id"])

    @app.task(limits=["per-tenant"])
    def work(tenant: object) -> None: ...

    with pytest.raises(ArgumentError, match="key function of limiter 'per-tenant' failed"):
        work.delay("no id here")
    with pytest.raises(ArgumentError, match="return a str or int"):
        work.delay({"id": [1]})
    with pytest.raises(ArgumentError, match="over 200"):
        work.delay({"id": "x" * 201})


def test_a_task_names_only_declared_limiters_and_its_own_rate_is_a_limiter() -> None:
    app = _app()
    with pytest.raises(ConfigurationError, match=r"app.limiter\('partner'"):

        @app.task(limits=["partner"])
        def early() -> None: ...

    @app.task(name="sync", rate_limit="100/m", concurrency=2)
    def sync() -> None: ...

    assert app.limiters["sync"].describe() == "100/m, at most 2 at once"
    assert sync.options.limiters == (app.limiters["sync"],)
    assert app.broker.settings.limits, "the broker's fetches carry the limiter"


def test_a_limiter_shared_by_tasks_of_two_queues_is_refused() -> None:
    app = _app()
    app.limiter("partner", rate="5/s")

    @app.task(limits=["partner"])
    def one() -> None: ...

    with pytest.raises(ConfigurationError, match="budget is kept with its queue"):

        @app.task(limits=["partner"], queue="other")
        def two() -> None: ...


def test_a_second_limiter_of_one_name_is_refused() -> None:
    app = _app()
    app.limiter("partner", rate="5/s")
    with pytest.raises(ConfigurationError, match="already declared"):
        app.limiter("partner", concurrency=1)


def test_rate_limited_takes_a_bounded_retry_after() -> None:
    assert RateLimited(2.5).retry_after == 2.5
    with pytest.raises(ArgumentError, match="retry_after"):
        RateLimited(-1)


def test_a_unique_key_ignores_keyword_order_and_differs_by_argument() -> None:
    assert unique_key("t", [1], {"a": 1, "b": 2}) == unique_key("t", [1], {"b": 2, "a": 1})
    assert unique_key("t", [1], {}) != unique_key("t", [2], {})
    assert unique_key("t", [1], {}) != unique_key("u", [1], {})


def test_a_unique_task_sends_one_job_per_arguments_while_the_key_holds() -> None:
    app = _app()

    @app.task(unique=True)
    def report(day: str) -> str:
        return day

    first = report.delay("2026-12-01")
    assert report.delay("2026-12-01").id == first.id, "the same arguments: the same job"
    assert report.delay("2026-12-02").id != first.id
    assert report.apply_async(["2026-12-01"], idempotency_key="mine").id != first.id
    run_jobs(app)
    assert report.delay("2026-12-01").id == first.id, "window mode: held after it finished"


def test_a_unique_until_finished_task_takes_the_arguments_again_once_done() -> None:
    app = _app()

    @app.task(unique="until_finished")
    def rebuild(index: str) -> None: ...

    first = rebuild.delay("users")
    assert rebuild.delay("users").id == first.id
    run_jobs(app)
    assert rebuild.delay("users").id != first.id, "released when the first job ended"


def test_unique_takes_only_its_modes() -> None:
    app = _app()
    wrong: dict[str, Any] = {"unique": "forever"}
    with pytest.raises(ConfigurationError, match="unique must be"):
        app.task(**wrong)(lambda: None)
