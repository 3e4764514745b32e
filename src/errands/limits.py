"""Rate limits (GCRA) and concurrency caps shared by every worker, checked at fetch time.

A `Limiter` is declared once on the app (`App.limiter`, or `rate_limit=` / `concurrency=` on a
task) and named by the jobs of the tasks it limits. Redis holds its state next to the queue
(``lua/01_limits.lua``): a job over a rate waits in Redis for the slot booked for it, one over
a concurrency cap waits until a running job of the limiter ends; neither spends an attempt or
holds a worker slot. What a limiter allows travels with every fetch from the worker's app, so a
restarted Redis never runs jobs under a stale or missing configuration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from errands.broker.views import LimiterState, LimitKeyState
from errands.errors import ArgumentError, ConfigurationError

if TYPE_CHECKING:
    from errands.task import TaskOptions

__all__ = [
    "Limiter",
    "Rate",
    "key_state",
    "limit_records",
    "limiter_state",
    "pack_limiters",
    "parse_rate",
]

_PERIODS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([smhd])\s*$")
# Limiter names share the charset of queue names, without '|' (it ends the name in a record).
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
#: The longest key a key function may return (it is part of a Redis field name).
MAX_KEY_CHARS = 200


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate: `count` starts per `period_s` seconds, spread evenly (GCRA).

    Attributes:
        count: starts allowed per period.
        period_s: the period in seconds.
    """

    count: int
    period_s: float

    @property
    def interval_ms(self) -> float:
        """The time between two starts at this rate, in milliseconds."""
        return self.period_s * 1000 / self.count

    def __str__(self) -> str:
        for unit, length in _PERIODS_S.items():
            if self.period_s == length:
                return f"{self.count}/{unit}"
        return f"{self.count}/{self.period_s:g}s"


def parse_rate(rate: str | Rate) -> Rate:
    """Parse ``"100/m"``, ``"20/s"``, ``"5/10s"`` or ``"1000/h"`` (also ``d``) into a `Rate`."""
    if isinstance(rate, Rate):
        return rate
    found = _RATE.match(rate) if isinstance(rate, str) else None
    if found is None:
        raise ConfigurationError(
            f"a rate is 'count/period' such as '100/m', '20/s' or '5/10s' (periods s, m, h, d), "
            f"not {rate!r}"
        )
    count, multiple, unit = int(found[1]), found[2], found[3]
    period_s = (float(multiple) if multiple else 1.0) * _PERIODS_S[unit]
    if count < 1 or not 0 < period_s < math.inf:
        raise ConfigurationError(f"a rate allows at least one start per period, not {rate!r}")
    return Rate(count, period_s)


KeyFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Limiter:
    """A limit that every worker of a queue honours together.

    Args:
        name: its name, as tasks refer to it (``limits=["partner-api"]``).
        rate: starts allowed per period (``"100/m"``), spread evenly; None: no rate.
        burst: starts allowed at once when the limiter was idle (1: never two closer than
            one interval, so no window of the partner's sees more than the rate).
        concurrency: jobs of it running at once across all workers and hosts; None: no cap.
        key: a function of the task's arguments (called like the task, without its context)
            giving a key: each key gets a limit of its own (per tenant, per account).
    """

    name: str
    rate: Rate | None = None
    burst: int = 1
    concurrency: int | None = None
    key: KeyFunction | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigurationError(
                f"a limiter name is 1-100 letters, digits and . _ : -, not {self.name!r}"
            )
        if self.rate is None and self.concurrency is None:
            raise ConfigurationError(
                f"limiter {self.name!r} limits nothing: give rate='100/m', concurrency=5, or both"
            )
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ConfigurationError(f"burst must be an int >= 1, not {self.burst!r}")
        if self.concurrency is not None and (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ConfigurationError(
                f"concurrency must be an int >= 1 (or None), not {self.concurrency!r}"
            )
        if self.key is not None and not callable(self.key):
            raise ConfigurationError(
                f"key must be a function of the task's arguments, not {self.key!r}"
            )

    def describe(self) -> str:
        """What it allows, in words: ``20/s (burst 5), at most 3 at once, per key``."""
        parts = []
        if self.rate is not None:
            parts.append(f"{self.rate}" + (f" (burst {self.burst})" if self.burst > 1 else ""))
        if self.concurrency is not None:
            parts.append(f"at most {self.concurrency} at once")
        if self.key is not None:
            parts.append("per key")
        return ", ".join(parts)

    def record(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        """The name of the state record a job with these arguments counts against."""
        if self.key is None:
            return f"{self.name}|"
        try:
            key = self.key(*args, **kwargs)
        except Exception as error:
            raise ArgumentError(
                f"the key function of limiter {self.name!r} failed on these arguments: "
                f"{error!r}; it is called like the task (without its context)"
            ) from error
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise ArgumentError(
                f"the key function of limiter {self.name!r} returned {key!r}: return a str or int"
            )
        text = str(key)
        if len(text) > MAX_KEY_CHARS:
            raise ArgumentError(
                f"the key of limiter {self.name!r} is {len(text)} characters, over "
                f"{MAX_KEY_CHARS}: return a shorter key (an id, or a hash)"
            )
        # '|' separates the parts of a record name and of a waiter's entry (01_limits.lua).
        return f"{self.name}|" + text.replace("%", "%25").replace("|", "%7C")


def limit_records(
    limiters: Iterable[Limiter], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, ...]:
    """The records a job of a task with these limiters counts against (its meta ``lm``)."""
    return tuple(limiter.record(args, kwargs) for limiter in limiters)


def pack_limiters(limiters: Iterable[Limiter]) -> bytes:
    """What a fetch carries: each limiter's interval (ms), burst and concurrency, in msgpack.

    The map of ``01_limits.lua``: name -> {t interval ms, b burst, c concurrency}; b"" for none.
    """
    table: dict[str, dict[str, float | int]] = {}
    for limiter in limiters:
        rule: dict[str, float | int] = {"b": limiter.burst}
        if limiter.rate is not None:
            rule["t"] = limiter.rate.interval_ms
        if limiter.concurrency is not None:
            rule["c"] = limiter.concurrency
        table[limiter.name] = rule
    return msgspec.msgpack.encode(table) if table else b""


def rate_of(value: str | Rate | None) -> Rate | None:
    """`parse_rate` for an optional rate."""
    return None if value is None else parse_rate(value)


def limiters_of(
    task: str, options: Mapping[str, Any], declared: Mapping[str, Limiter]
) -> tuple[Limiter, ...]:
    """The limiters a task's options name: its own (rate_limit=, concurrency=) first."""
    found: list[Limiter] = []
    rate, cap = options.get("rate_limit"), options.get("concurrency")
    if rate is not None or cap is not None:
        if task in declared:
            raise ConfigurationError(
                f"a limiter named {task!r} is declared already, so task {task!r} cannot have "
                "one of its own: name that limiter in limits=[...] instead"
            )
        found.append(Limiter(task, rate_of(rate), 1, cap))
    for item in options.get("limits", ()):
        name = item.name if isinstance(item, Limiter) else item
        if name not in declared:
            raise ConfigurationError(
                f"task {task!r} names the limiter {name!r}, which this app does not declare: "
                f"app.limiter({name!r}, rate=..., concurrency=...) first"
            )
        found.append(declared[name])
    return tuple(found)


def check_shared_queue(options: TaskOptions, others: Iterable[TaskOptions]) -> None:
    """Refuse a limiter shared by tasks of two queues: each queue keeps a budget of its own."""
    for limiter in options.limiters:
        for other in others:
            if limiter in other.limiters and other.queue != options.queue:
                raise ConfigurationError(
                    f"limiter {limiter.name!r} is used by task {other.name!r} on queue "
                    f"{other.queue!r} and by {options.name!r} on queue {options.queue!r}: a "
                    "limiter's budget is kept with its queue, so put the tasks that share it "
                    "on one queue"
                )


def unique_mode(unique: object) -> Literal["window", "until_finished"] | None:
    """The idempotency mode ``unique=`` asks for (True: the key's window), or None."""
    if unique is False or unique is None:
        return None
    if unique is True or unique == "window":
        return "window"
    if unique == "until_finished":
        return "until_finished"
    raise ConfigurationError(
        f"unique must be True, False, 'window' or 'until_finished', not {unique!r}"
    )


def key_state(
    limiter: Limiter,
    record: str,
    tat_ms: float,
    backoff_ms: float,
    now_ms: float,
    holders: int,
    parked: int,
) -> LimitKeyState:
    """Where one record of `limiter` stands at `now_ms` (as ``01_limits.lua`` would judge it)."""
    key = record.split("|", 1)[1].replace("%7C", "|").replace("%25", "%")
    tokens: int | None = None
    next_start: float | None = None
    booked = 0
    if limiter.rate is not None:
        interval, burst = limiter.rate.interval_ms, limiter.burst
        effective = max(tat_ms, backoff_ms + (burst - 1) * interval)
        allow_at = max(effective, now_ms) - (burst - 1) * interval
        next_start = max(0.0, allow_at - now_ms) / 1000
        used = math.ceil(max(0.0, effective - now_ms) / interval)
        tokens = max(0, burst - used)
        booked = max(0, math.ceil(max(0.0, tat_ms - now_ms) / interval) - burst)
    return LimitKeyState(
        key=key,
        tokens=tokens,
        next_start_in_s=next_start,
        booked=booked,
        running=holders,
        parked=parked,
        backoff_s=max(0.0, backoff_ms - now_ms) / 1000,
    )


def limiter_state(
    limiter: Limiter, queue: str, keys: list[LimitKeyState], cursor: str | None
) -> LimiterState:
    """A limiter's `LimiterState` from the states of its keys."""
    return LimiterState(
        name=limiter.name,
        queue=queue,
        allows=limiter.describe(),
        rate=None if limiter.rate is None else str(limiter.rate),
        burst=limiter.burst,
        concurrency=limiter.concurrency,
        keys=keys,
        cursor=cursor,
    )
