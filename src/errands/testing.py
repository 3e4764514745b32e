"""Helpers to test code that uses errands, with no Redis server and no worker process.

Give your app an in-memory broker; it keeps the exact semantics of the Redis one (priorities,
delays, leases, retries, idempotency, results), and its clock can be moved by hand. Then run
the queued jobs in your test's process with `run_jobs`, as a worker would::

    from errands import App
    from errands.testing import MemoryBroker, run_jobs

    app = App(broker=MemoryBroker())

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(1, 2)
    assert run_jobs(app) == 1
    assert result.get(timeout=0) == 3

To test delays and retry backoff without sleeping, pass a clock (seconds, like `time.time`)
that you move yourself: ``MemoryBroker(clock=lambda: now[0])``; a retried job runs again in
`run_jobs` once the clock has passed its due time; `ManualClock` is such a clock.

To hold a broker of your own to what errands needs of one, run the conformance suite against
it with `check_broker` (or `acheck_broker` inside an event loop)::

    from errands.testing import ManualClock, MemoryBroker, check_broker

    clock = ManualClock()
    check_broker(lambda: MemoryBroker(clock=clock), clock=clock)
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from errands import conformance
from errands.app import App
from errands.broker.base import Broker
from errands.broker.memory import MemoryBroker
from errands.broker.types import Outcome
from errands.broker.views import MAX_PAGE
from errands.conformance import CHECKS, Clock, Subject
from errands.errors import ConfigurationError, ErrandsError
from errands.worker.execution import Executor
from errands.worker.follow_ups import apply_follow_ups
from errands.worker.protocol import Finished, Job

__all__ = [
    "BrokerCheckFailed",
    "ManualClock",
    "MemoryBroker",
    "acheck_broker",
    "check_broker",
    "run_jobs",
]

_WORKER_ID = "errands.testing"


async def _run_batch(app: App, executor: Executor, queue: str, limit: int) -> int:
    fetched = await app.broker.fetch(queue, limit, int(app.lease * 1000), _WORKER_ID)
    outcomes: list[Outcome] = []
    for delivery in fetched.jobs:
        prepared = executor.prepare(Job(delivery.id, delivery.payload, delivery.attempt))
        if isinstance(prepared, Finished):
            finished = prepared
        elif prepared.is_async:
            finished = await executor.run_async(prepared)
        else:
            finished = executor.run_sync(prepared)
        await apply_follow_ups(app, finished.follow_ups)  # before the ack
        outcomes.append(
            Outcome(
                delivery.id,
                delivery.token,
                finished.kind,
                finished.outcome,
                finished.retry_delay_ms,
            )
        )
    if outcomes:
        await app.broker.ack(queue, outcomes)
        await app.broker.adeliver_chord_failures(queue)  # a member that died fails its chord
    return len(outcomes)


def run_jobs(app: App, queues: Sequence[str] | None = None, *, max_jobs: int = 10_000) -> int:
    """Run the jobs that are ready now, in this process, until none is left; return how many.

    Jobs a task enqueues while running are run too; a retry runs again once it is due by the
    broker's clock. Soft and hard time limits are not enforced here. Works with any broker;
    with a `MemoryBroker` no server is needed.

    Args:
        app: the app whose queued jobs to run.
        queues: the queues to drain (default: every queue the broker knows).
        max_jobs: a bound, so a task that enqueues itself forever still ends the test.
    """
    executor = Executor(app, lambda _job_id: False)

    async def drain() -> int:
        try:
            return await drain_queues()
        finally:
            await app.broker.aclose()  # its async connections belong to this event loop

    async def drain_queues() -> int:
        ran = 0
        while ran < max_jobs:
            names = list(queues) if queues is not None else await _every_queue(app)
            batch = 0
            for queue in names:
                batch += await _run_batch(app, executor, queue, min(100, max_jobs - ran - batch))
            if batch == 0:
                return ran
            ran += batch
        return ran

    return asyncio.run(drain())


async def _every_queue(app: App) -> list[str]:
    """Every queue the broker knows, page after page of the inspector."""
    names: list[str] = []
    cursor: str | None = None
    while True:
        page = await app.broker.inspector.aqueues(after=cursor, limit=MAX_PAGE)
        names += [q.name for q in page.items]
        if page.cursor is None:
            return names
        cursor = page.cursor


class ManualClock:
    """A clock that moves only when told to: time in tests without sleeping.

    Pass it as the broker's clock (``MemoryBroker(clock=clock)``), then `advance` it; give it to
    `check_broker` too, and the checks move it instead of sleeping.

    Args:
        start_s: the time it starts at, in seconds since the epoch; by default the current
            time to the whole second, so steps of whole milliseconds land exactly.
    """

    def __init__(self, start_s: float | None = None) -> None:
        self.now_s = float(int(time.time())) if start_s is None else start_s

    def __repr__(self) -> str:
        return f"ManualClock(now_s={self.now_s!r})"

    def __call__(self) -> float:
        """The clock's time, in seconds since the epoch, as `time.time` gives it."""
        return self.now_s

    def advance(self, seconds: float | timedelta) -> None:
        """Move the clock forward by `seconds` (a number of seconds, or a `timedelta`).

        Raises:
            ConfigurationError: `seconds` is negative; a broker's clock never goes back.
        """
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        if step < 0:
            raise ConfigurationError(f"a clock only moves forward: advance({seconds!r}) is < 0")
        self.now_s += step


class BrokerCheckFailed(ErrandsError, AssertionError):
    """Checks of the broker conformance suite failed: the broker does not behave as it must.

    The message lists each failed check with its assertion's message and where in the suite
    it failed. Fix the broker until each passes; run one alone with ``only=[name]``.

    Attributes:
        failures: the error each failed check raised, by the check's name, in the order run.
        ran: how many checks ran.
    """

    def __init__(self, failures: Mapping[str, Exception], ran: int) -> None:
        self.failures = dict(failures)
        self.ran = ran
        lines = [f"{len(self.failures)} of {ran} broker checks failed:"]
        lines += [f"- {name}: {_describe(error)}" for name, error in self.failures.items()]
        lines.append("Fix the broker until each passes; run one alone with only=[name].")
        super().__init__("\n".join(lines))


_SUITE_DIR = Path(conformance.__file__).parent


def _describe(error: Exception) -> str:
    # An assertion's message says what was wrong; any other error also says what it is.
    said = str(error) or "assertion failed"
    text = said if type(error) is AssertionError else f"{type(error).__name__}: {said}"
    notes = getattr(error, "__notes__", [])
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).is_relative_to(_SUITE_DIR)
    ]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return " ".join([text, *notes]) + where


def _selected(only: Iterable[str] | None) -> list[str]:
    if only is None:
        return list(CHECKS)
    wanted = set(only)
    unknown = sorted(wanted - CHECKS.keys())
    if unknown:
        raise ConfigurationError(
            f"no broker check is named {', '.join(unknown)}; "
            "the names are the keys of errands.conformance.CHECKS"
        )
    return [name for name in CHECKS if name in wanted]


async def acheck_broker(
    make_broker: Callable[[], Broker],
    *,
    clock: Clock | None = None,
    only: Iterable[str] | None = None,
) -> list[str]:
    """Run the broker conformance suite against brokers from `make_broker`: the async twin.

    Each check gets a broker of its own from `make_broker`, which must be empty: cleaning up
    what a check left (a Redis namespace, a database) is the factory's business, e.g. a fresh
    namespace per call. After the check the broker is closed, ``close()`` then ``aclose()``.
    Every selected check runs, failed ones too, then one error names all that failed.

    Args:
        make_broker: makes a fresh, empty broker, once per check.
        clock: the clock the brokers read, which the checks move (an
            `errands.testing.ManualClock` given to each broker); None when the brokers read
            real time, and the checks sleep (leases and TTLs are tens of ms, 0.3 s at most).
        only: the names of the checks to run (keys of `errands.conformance.CHECKS`); all by
            default. They run in the suite's order, whatever the order given.

    Returns:
        The names of the checks that ran, in order; all of them passed.

    Raises:
        BrokerCheckFailed: one or more checks failed; its message names each with why.
        ConfigurationError: `only` names no check, or Python runs with ``-O`` (the checks
            are `assert` statements, which ``-O`` removes).
    """
    if not __debug__:
        raise ConfigurationError("the broker checks are asserts: run Python without -O")
    names = _selected(only)
    failures: dict[str, Exception] = {}
    for name in names:
        broker = make_broker()
        try:
            await CHECKS[name](Subject(broker, clock))
        except Exception as error:  # noqa: BLE001 - a broker's bug may raise anything; report it
            failures[name] = error
        try:
            broker.close()
            await broker.aclose()
        except Exception as error:  # noqa: BLE001 - as above, for closing after the check
            error.add_note("(raised closing the broker after the check)")
            failures.setdefault(name, error)
    if failures:
        raise BrokerCheckFailed(failures, len(names))
    return names


def check_broker(
    make_broker: Callable[[], Broker],
    *,
    clock: Clock | None = None,
    only: Iterable[str] | None = None,
) -> list[str]:
    """Run the broker conformance suite against brokers from `make_broker`.

    Holds a broker to what errands' workers and producers need of one, check by check (the
    checks: `errands.conformance`). It runs an event loop of its own: inside one, await
    `acheck_broker`, which takes the same arguments. For example, with a fake clock::

        clock = ManualClock()
        check_broker(lambda: MyBroker(clock=clock), clock=clock)

    Args:
        make_broker: makes a fresh, empty broker, once per check; cleaning up what the last
            check left is its business. Each broker is closed after its check.
        clock: the clock the brokers read, which the checks move; None when they read real
            time, and the checks sleep instead.
        only: the names of the checks to run (keys of `errands.conformance.CHECKS`); all by
            default.

    Returns:
        The names of the checks that ran, in order; all of them passed.

    Raises:
        BrokerCheckFailed: one or more checks failed; its message names each with why.
        ConfigurationError: `only` names no check, or Python runs with ``-O``.
    """
    return asyncio.run(acheck_broker(make_broker, clock=clock, only=only))
