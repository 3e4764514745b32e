"""Retries: which errors are retried, after how long (exponential, capped, jittered), how often."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from errands import App, ConfigurationError, Retry
from errands.retry import RetryPolicy, backoff_delay


@pytest.mark.parametrize(("attempt", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0)])
def test_the_delay_doubles_after_each_failed_attempt(attempt: int, delay: float) -> None:
    assert backoff_delay(attempt, 1.0, 600.0, jitter=False) == delay


def test_the_delay_stops_growing_at_the_cap() -> None:
    assert backoff_delay(10, 1.0, 600.0, jitter=False) == 512.0
    assert backoff_delay(11, 1.0, 600.0, jitter=False) == 600.0
    assert backoff_delay(10_000, 1.0, 600.0, jitter=False) == 600.0  # no overflow


def test_attempt_zero_is_treated_as_the_first_failure() -> None:
    assert backoff_delay(0, 3.0, 600.0, jitter=False) == 3.0


def test_a_zero_base_retries_at_once() -> None:
    assert backoff_delay(5, 0.0, 600.0, jitter=True, rng=random.Random(1)) == 0.0


def test_full_jitter_draws_over_the_whole_range_from_zero_to_the_delay() -> None:
    rng = random.Random(2024)
    draws = [backoff_delay(4, 1.0, 600.0, jitter=True, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= 8.0 for d in draws)
    assert min(draws) < 0.5
    assert max(draws) > 7.5
    assert 3.0 < statistics.mean(draws) < 5.0


def test_the_same_seed_gives_the_same_delays() -> None:
    first, second = random.Random(7), random.Random(7)
    assert [backoff_delay(n, 1.0, 60.0, jitter=True, rng=first) for n in range(1, 9)] == [
        backoff_delay(n, 1.0, 60.0, jitter=True, rng=second) for n in range(1, 9)
    ]


@given(
    attempt=st.integers(1, 200),
    base=st.floats(0.0, 1e4),
    cap=st.floats(0.0, 1e6),
    seed=st.integers(0, 2**32),
)
def test_a_jittered_delay_is_never_negative_nor_above_the_capped_exponential(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(attempt, base, cap, jitter=True, rng=random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** (attempt - 1))


@given(attempt=st.integers(1, 60), base=st.floats(0.0, 1e4), cap=st.floats(0.0, 1e6))
def test_without_jitter_the_delay_is_exactly_the_capped_exponential(
    attempt: int, base: float, cap: float
) -> None:
    assert backoff_delay(attempt, base, cap, jitter=False) == min(cap, base * 2.0 ** (attempt - 1))


def test_by_default_any_exception_is_retried_but_not_a_keyboard_interrupt() -> None:
    policy = RetryPolicy()
    assert policy.retryable(ValueError("bad"))
    assert not policy.retryable(KeyboardInterrupt())


def test_autoretry_for_limits_the_retried_errors_to_those_types() -> None:
    policy = RetryPolicy(autoretry_for=(ConnectionError,))
    assert policy.retryable(ConnectionResetError())  # a subclass counts
    assert not policy.retryable(ValueError())


def test_dont_autoretry_for_wins_over_autoretry_for() -> None:
    policy = RetryPolicy(
        autoretry_for=(ConnectionError,), dont_autoretry_for=(ConnectionRefusedError,)
    )
    assert policy.retryable(ConnectionResetError())
    assert not policy.retryable(ConnectionRefusedError())


def test_an_explicit_retry_is_honoured_whatever_the_autoretry_settings() -> None:
    policy = RetryPolicy(autoretry_for=(), dont_autoretry_for=(Exception,))
    assert policy.retryable(Retry())


def test_the_countdown_of_a_retry_wins_over_the_backoff() -> None:
    policy = RetryPolicy(backoff_s=100.0, jitter=False)
    assert policy.delay_s(1, Retry(countdown=5)) == 5.0
    assert policy.delay_s(1, Retry(countdown=-3)) == 0.0
    assert policy.delay_s(3, Retry()) == 400.0
    assert policy.delay_s(3, ValueError()) == 400.0


def test_the_policy_draws_its_jitter_from_the_given_random_source() -> None:
    policy = RetryPolicy(backoff_s=2.0, backoff_max_s=50.0)
    expected = backoff_delay(4, 2.0, 50.0, jitter=True, rng=random.Random(3))
    assert policy.delay_s(4, ValueError(), rng=random.Random(3)) == expected


def test_max_retries_none_is_refused_because_it_would_retry_forever() -> None:
    with pytest.raises(ConfigurationError, match="max_retries=None would retry forever"):
        RetryPolicy(max_retries=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, True, 2.5, "3"])
def test_max_retries_must_be_a_non_negative_int(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        RetryPolicy(max_retries=bad)  # type: ignore[arg-type]


def test_max_retries_zero_runs_the_job_once() -> None:
    assert RetryPolicy(max_retries=0).max_attempts == 1
    assert RetryPolicy().max_attempts == 4


def test_a_negative_backoff_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="retry_backoff"):
        RetryPolicy(backoff_s=-1.0)


def test_tasks_refuse_an_unbounded_or_negative_retry_limit() -> None:
    app = App("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match="retry forever"):
        app.task(max_retries=None)(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="max_retries must be an int >= 0"):
        app.task(max_retries=-1)(lambda: None)
    with pytest.raises(ConfigurationError, match="retry forever"):
        App("redis://127.0.0.1:1/0", max_retries=None)  # type: ignore[arg-type]
