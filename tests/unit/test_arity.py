"""The enqueue-time arity check agrees with Python's own binding of the call."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from errands.arity import arity_checker


def plain(a: int, b: int = 2) -> None: ...
def keyword_only(a: int, *, b: int, c: int = 3) -> None: ...
def positional_only(a: int, b: int = 1, /, c: int = 2) -> None: ...
def variadic(a: int, *rest: int, flag: bool = False, **extra: int) -> None: ...
def bound(ctx: object, x: int) -> None: ...


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((1,), {}),
    ((1, 2), {}),
    ((1, 2, 3), {}),
    ((1,), {"b": 2}),
    ((), {"a": 1, "b": 2}),
    ((1,), {"c": 4}),
    ((1, 2), {"a": 1}),
    ((1,), {"zzz": 1}),
    ((1, 2, 3, 4), {"flag": True, "other": 5}),
]


@pytest.mark.parametrize("fn", [plain, keyword_only, positional_only, variadic])
@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_the_check_refuses_exactly_the_calls_that_do_not_bind(
    fn: Callable[..., None], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        inspect.signature(fn).bind(*args, **kwargs)
        fits = True
    except TypeError:
        fits = False
    check = arity_checker(fn)
    if fits:
        check(*args, **kwargs)
    else:
        with pytest.raises(TypeError):
            check(*args, **kwargs)


def test_a_bound_tasks_context_is_not_the_callers_to_pass() -> None:
    check = arity_checker(bound, skip_first=True)
    check(1)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        check()


def test_a_lambda_gets_a_valid_name() -> None:
    check = arity_checker(lambda x: x)
    with pytest.raises(TypeError, match=r"task\(\) missing"):
        check()
