"""The options of a task as `App.task` builds them: the app's defaults, then the task's own."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from errands.errors import ConfigurationError
from errands.limits import Limiter, limiters_of, unique_mode
from errands.middleware import accepting
from errands.result import seconds
from errands.retry import RetryPolicy
from errands.task import TaskOptions, check_limits

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["TaskOptionsKw", "build_task_options"]


class TaskOptionsKw(TypedDict, total=False):
    """The keyword options of `App.task` (Celery's names, errands' safe defaults)."""

    name: str
    queue: str
    priority: int
    max_retries: int
    autoretry_for: tuple[type[BaseException], ...]
    dont_autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: bool | float
    retry_backoff_max: float
    retry_jitter: bool
    soft_time_limit: float | timedelta
    time_limit: float | timedelta
    ignore_result: bool
    result_ttl: float | timedelta
    idempotency_ttl: float | timedelta
    max_stalls: int
    extras: Mapping[str, Any]
    rate_limit: str
    concurrency: int
    limits: Sequence[str | Limiter]
    unique: bool | Literal["window", "until_finished"]


def build_task_options(
    app: App, function: Callable[..., Any], *, bind: bool, **options: Any
) -> TaskOptions:
    """The options of a task `app` registers, from `app`'s defaults and `options`."""
    unknown = set(options) - set(TaskOptionsKw.__annotations__)
    if unknown:
        raise ConfigurationError(
            f"unknown task option(s) {', '.join(sorted(unknown))}; the options are "
            f"{', '.join(TaskOptionsKw.__annotations__)}, bind"
        )
    backoff = options.get("retry_backoff", True)
    backoff_s = 0.0 if backoff is False else 1.0 if backoff is True else float(backoff)
    retry = RetryPolicy(
        max_retries=options.get("max_retries", app.max_retries),
        autoretry_for=tuple(options.get("autoretry_for", (Exception,))),
        dont_autoretry_for=tuple(options.get("dont_autoretry_for", ())),
        backoff_s=backoff_s,
        backoff_max_s=float(options.get("retry_backoff_max", 600.0)),
        jitter=bool(options.get("retry_jitter", True)),
    )
    soft = options.get("soft_time_limit")
    hard = options.get("time_limit")
    soft_s = seconds(soft) if soft is not None else None
    hard_s = seconds(hard) if hard is not None else None
    check_limits(soft_s, hard_s)  # each as given, before one is derived from the other
    if soft_s is None:
        soft_s = min(app.soft_time_limit, hard_s * 0.9) if hard_s else app.soft_time_limit
    if hard_s is None:
        hard_s = max(app.time_limit, soft_s * 1.2)
    name = options.get("name", f"{function.__module__}.{function.__qualname__}")
    return TaskOptions(
        name=name,
        queue=options.get("queue", app.default_queue),
        priority=options.get("priority", 0),
        retry=retry,
        soft_time_limit=soft_s,
        time_limit=hard_s,
        bind=bind,
        ignore_result=options.get("ignore_result", False),
        result_ttl=seconds(options.get("result_ttl", app.result_ttl)),
        idempotency_ttl=seconds(options.get("idempotency_ttl", app.idempotency_ttl)),
        max_stalls=options.get("max_stalls", app.max_stalls),
        extras=_extras(app, options.get("extras", {})),
        limiters=limiters_of(name, options, app.limiters),
        unique=unique_mode(options.get("unique", False)),
    )


def _extras(app: App, extras: Mapping[str, Any]) -> dict[str, Any]:
    """The task's options for middleware, each one read by some middleware of the app."""
    accepted = app.middleware.options()
    for name in extras:
        if name in accepted:
            continue
        others = accepting(name)
        hint = (
            f"it is an option of {', '.join(others)}: add one to App(middleware=[...])"
            if others
            else "no middleware defines it: check its name"
        )
        raise ConfigurationError(
            f"task option extras[{name!r}] is read by no middleware of this app; {hint}"
        )
    return dict(extras)
