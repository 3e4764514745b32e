"""The scheduler's decisions, on the memory broker and a manual clock (no Redis, no sleeping).

Leadership and its fence, fires enqueued once under their fire id, catch-up after downtime,
overlap policies, pauses, run limits, code schedules reconciled with an operator's, and what a
task sees as ``ctx.scheduled_for``. The same scheduler runs against real Redis and real
processes in tests/integration/test_beat.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from errands import App, TaskContext
from errands.broker.memory import MemoryBroker
from errands.errors import ArgumentError, ConfigurationError, ScheduleNotFound
from errands.schedule.fire import build_fire
from errands.schedule.scheduler import Scheduler
from errands.states import JobState
from errands.testing import ManualClock, run_jobs

START = 1_800_000_000.0  # a whole minute (2027-01-15T08:00:00Z)


SEEN: list[str] = []


def _app(clock: ManualClock, *, periodic: bool = True) -> App:
    """An app whose task "tick" records its nominal time; with `periodic`, sent every 10 s."""
    app = App(broker=MemoryBroker(clock=clock))

    @app.task(name="tick", bind=True)
    def tick(ctx: TaskContext) -> None:
        assert ctx.scheduled_for is not None
        SEEN.append(ctx.scheduled_for.isoformat())

    if periodic:
        every_10_s = app.periodic(
            every=timedelta(seconds=10),
            id="tick",
            catchup_window=timedelta(minutes=1),
            overlap="allow_all",  # no worker runs here: every fire is sent
        )
        every_10_s(tick)
    return app


def _step(scheduler: Scheduler) -> float:
    return asyncio.run(scheduler.step())


def _ready(app: App) -> int:
    return app.inspector.queue("default").ready


def _start(clock: ManualClock, app: App, owner: str = "a") -> Scheduler:
    scheduler = Scheduler(app, owner=owner, clock=clock)
    asyncio.run(scheduler.reconcile())
    return scheduler


def _leading() -> tuple[ManualClock, App, Scheduler]:
    """A manual clock, the app with its "tick" every 10 s, and its scheduler, leading."""
    clock = ManualClock(START)
    app = _app(clock)
    scheduler = _start(clock, app)
    _step(scheduler)
    assert scheduler.leading
    return clock, app, scheduler


def test_a_leader_fires_each_interval_once_and_sleeps_until_the_next() -> None:
    clock = ManualClock(START)
    app = _app(clock)
    scheduler = _start(clock, app)
    wait = _step(scheduler)
    assert scheduler.leading
    assert _ready(app) == 0  # first seen now: the first fire is the next one
    assert wait == pytest.approx(2.0)  # renewing the lease comes first
    clock.advance(10)
    _step(scheduler)
    clock.advance(0.5)
    _step(scheduler)  # nothing new
    assert _ready(app) == 1
    SEEN.clear()
    run_jobs(app, ["default"])
    assert [datetime.fromtimestamp(START + 10, UTC).isoformat()] == SEEN


def test_a_second_scheduler_stands_by_and_takes_over_once_the_lease_expires() -> None:
    clock = ManualClock(START)
    app = _app(clock)
    first, second = _start(clock, app, "a"), _start(clock, app, "b")
    for _ in range(6):  # START .. START + 10, every 2 s: the leader renews its lease
        _step(first)
        _step(second)
        assert (first.leading, second.leading) == (True, False)
        clock.advance(2)
    assert _ready(app) == 1  # START + 10
    # The leader dies (it steps no more): its lease, renewed at START + 10, ends at START + 20.
    for _ in range(4):
        _step(second)
        assert not second.leading
        clock.advance(2)
    _step(second)  # START + 20
    assert second.leading
    assert _ready(app) == 2  # the fire of START + 20, not the one of START + 10 again
    # The old leader wakes: it learns it lost, and sends nothing.
    clock.advance(2)
    _step(first)
    assert not first.leading
    assert _ready(app) == 2


def test_a_fire_sent_by_a_leader_that_died_before_recording_it_is_enqueued_once() -> None:
    clock, app, scheduler = _leading()
    queue, job = build_fire(app, app.periodic_schedules["tick"], round((START + 10) * 1000))
    app.send(queue, [job])
    clock.advance(10)
    _step(scheduler)
    assert _ready(app) == 1


def test_after_downtime_the_latest_fire_inside_the_window_runs_and_older_ones_are_missed() -> None:
    clock, app, scheduler = _leading()
    clock.advance(300)  # 30 fires due; the window holds the last 6 (1 minute)
    _step(scheduler)
    assert _ready(app) == 1
    [info] = app.schedules.list()
    assert info.state is not None
    assert (info.state.fired, info.state.missed, info.state.skipped) == (1, 23, 6)
    assert info.last_fire == datetime.fromtimestamp(START + 300, UTC)


def test_catchup_all_runs_every_fire_inside_the_window() -> None:
    clock = ManualClock(START)
    app = _app(clock, periodic=False)
    app.schedules.upsert("fast", "tick", every=10, catchup="all", catchup_window=60)
    scheduler = _start(clock, app)
    _step(scheduler)
    clock.advance(300)
    _step(scheduler)
    fast = app.schedules.get("fast").state
    assert fast is not None
    assert (fast.fired, fast.missed) == (7, 23)  # START+240 .. START+300 (the window's edge too)


@pytest.mark.parametrize(
    ("overlap", "ready", "fired", "skipped"),
    [("skip", 1, 1, 1), ("allow_all", 2, 2, 0), ("buffer_one", 1, 1, 0)],
)
def test_a_fire_whose_previous_run_is_still_queued_follows_the_overlap_policy(
    overlap: str, ready: int, fired: int, skipped: int
) -> None:
    clock = ManualClock(START)
    app = _app(clock, periodic=False)
    app.schedules.upsert("slow", "tick", every=10, overlap=overlap)
    scheduler = _start(clock, app)
    _step(scheduler)
    clock.advance(10)
    _step(scheduler)
    clock.advance(10)  # the first job has not run yet
    _step(scheduler)
    slow = app.schedules.get("slow").state
    assert slow is not None
    assert (slow.fired, slow.skipped) == (fired, skipped)
    assert _ready(app) == ready
    if overlap == "buffer_one":
        assert slow.buffered_ms == round((START + 20) * 1000)
        run_jobs(app, ["default"])
        clock.advance(1)
        _step(scheduler)
        slow = app.schedules.get("slow").state
        assert slow is not None
        assert (slow.fired, slow.buffered_ms) == (2, None)


def test_cancel_other_cancels_the_previous_run_then_sends_the_new_one() -> None:
    clock = ManualClock(START)
    app = _app(clock, periodic=False)
    app.schedules.upsert("latest-only", "tick", every=10, overlap="cancel_other")
    scheduler = _start(clock, app)
    _step(scheduler)
    clock.advance(10)
    _step(scheduler)
    first = app.schedules.get("latest-only").state
    assert first is not None
    first_job = first.last_job
    assert first_job is not None
    clock.advance(10)
    _step(scheduler)
    assert app.broker.job_state("default", first_job).state == JobState.CANCELLED


def test_a_paused_schedule_fires_nothing_and_resuming_from_now_skips_what_it_missed() -> None:
    clock, app, scheduler = _leading()
    app.schedules.pause("tick", note="partner outage")
    clock.advance(30)
    _step(scheduler)
    assert _ready(app) == 0
    info = app.schedules.get("tick")
    assert (info.pause.paused, info.pause.note, info.next_fire) == (True, "partner outage", None)
    app.schedules.resume("tick", resume_from="now")
    clock.advance(5)
    _step(scheduler)
    assert _ready(app) == 0  # START + 30 was missed while paused: not run
    clock.advance(5)
    _step(scheduler)
    assert _ready(app) == 1  # START + 40


def test_resuming_from_last_catches_up_by_the_policy() -> None:
    clock, app, scheduler = _leading()
    app.schedules.pause("tick")
    clock.advance(30)
    _step(scheduler)
    app.schedules.resume("tick")
    _step(scheduler)
    assert _ready(app) == 1  # the latest of the three missed fires


def test_a_run_limit_stops_the_schedule() -> None:
    clock = ManualClock(START)
    app = _app(clock, periodic=False)
    app.schedules.upsert("twice", "tick", every=10, run_limit=2)
    scheduler = _start(clock, app)
    _step(scheduler)
    for _ in range(4):
        clock.advance(10)
        run_jobs(app, ["default"])
        _step(scheduler)
    twice = app.schedules.get("twice")
    assert twice.state is not None
    assert (twice.state.fired, twice.next_fire) == (2, None)


def test_code_schedules_are_reconciled_and_an_operators_schedule_is_never_replaced() -> None:
    clock = ManualClock(START)
    app = _app(clock)
    app.schedules.upsert("report", "tick", cron="0 6 * * *", tz="Europe/Prague")
    assert asyncio.run(Scheduler(app, clock=clock).reconcile()) == {"tick": "created"}
    again = App(broker=app.broker)

    @again.periodic(cron="0 7 * * *", id="report")
    @again.periodic(every=60, id="tick")
    @again.task(name="tick")
    def tick() -> None: ...

    answers = asyncio.run(Scheduler(again, clock=clock).reconcile())
    assert answers == {"report": "kept", "tick": "replaced"}
    report = app.schedules.get("report").definition
    assert (report.origin, report.spec.cron) == ("operator", "0 6 * * *")
    # A code schedule gone from the code is removed; an operator's stays.
    bare = App(broker=app.broker)
    assert asyncio.run(Scheduler(bare, clock=clock).reconcile()) == {"tick": "removed"}
    assert [i.definition.id for i in bare.schedules.list()] == ["report"]


def test_trigger_and_backfill_send_under_fire_ids() -> None:
    clock = ManualClock(START)
    app = _app(clock)
    start = datetime.fromtimestamp(START, UTC)
    handles = app.schedules.backfill("tick", start, start + timedelta(seconds=30))
    assert [h.id for h in handles] == [f"tick@{round((START + s) * 1000)}" for s in (0, 10, 20, 30)]
    again = app.schedules.backfill("tick", start, start + timedelta(seconds=30))
    assert len(again) == 4
    assert _ready(app) == 4  # the same fires: none enqueued twice
    triggered = app.schedules.trigger("tick")
    assert triggered.id.startswith("tick@")
    assert _ready(app) == 5


def test_wrong_schedules_are_clear_errors() -> None:
    clock = ManualClock(START)
    app = _app(clock)
    with pytest.raises(ScheduleNotFound, match="no schedule 'nope'"):
        app.schedules.pause("nope")
    with pytest.raises(ConfigurationError, match="exactly one of cron="):
        app.schedules.upsert("x", "tick")
    with pytest.raises(ConfigurationError, match="overlap must be"):
        app.schedules.upsert("x", "tick", every=5, overlap="sometimes")
    with pytest.raises(ConfigurationError, match="without '@'"):
        app.schedules.upsert("a@b", "tick", every=5)
    with pytest.raises(ArgumentError, match=r"args\[0\] is a builtins.object"):
        app.schedules.upsert("x", "tick", every=5, args=[object()])
