"""`Schedules` (``app.schedules``): schedules managed at run time, and read by operators.

A schedule made here belongs to operators: code (``@app.periodic``) never replaces it. Pausing,
resuming, triggering and backfilling work on any schedule, code's too; a pause outlives deploys.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from errands.broker.types import NewJob
from errands.errors import ConfigurationError, ErrandsError, ScheduleNotFound
from errands.message import check_json
from errands.result import AsyncResult, seconds
from errands.schedule.fire import build_fire
from errands.schedule.records import (
    CATCHUP_WINDOW_S,
    Catchup,
    FireState,
    Overlap,
    Pause,
    ScheduleDef,
    decode_def,
    decode_pause,
    decode_state,
)
from errands.schedule.spec import ScheduleSpec, fires_after

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["MAX_BACKFILL", "ScheduleInfo", "Schedules", "schedule_def"]

#: The most fires one backfill sends: a bigger range is several calls.
MAX_BACKFILL = 10_000


class ScheduleInfo(msgspec.Struct, frozen=True):
    """A schedule as operators see it.

    Attributes:
        definition: what it sends, and when.
        state: its fire counts and last fire (None: no leader has seen it yet).
        pause: its pause (``paused`` False: running).
        next_fire: its next nominal fire time (None: ended, paused or at its run limit).
        last_fire: the nominal time of the last fire handled.
    """

    definition: ScheduleDef
    state: FireState | None
    pause: Pause
    next_fire: datetime | None
    last_fire: datetime | None


def schedule_def(
    schedule_id: str,
    task: str,
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    tz: str = "UTC",
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    overlap: Overlap = "skip",
    catchup: Catchup = "latest",
    catchup_window: float | timedelta = CATCHUP_WINDOW_S,
    jitter: float | timedelta = 0.0,
    run_limit: int | None = None,
    origin: Literal["code", "operator"] = "code",
) -> ScheduleDef:
    """A checked definition from the arguments of ``@app.periodic`` and `Schedules.upsert`."""
    for name, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise ConfigurationError(f"{name} must be an aware datetime, not a naive one")
    check_json(list(args), "the schedule's args")
    check_json(dict(kwargs or {}), "the schedule's kwargs")
    spec = ScheduleSpec(
        cron=cron,
        every_s=seconds(every) if every is not None else None,
        tz=tz,
        start=start.timestamp() if start else None,
        end=end.timestamp() if end else None,
    )
    return ScheduleDef(
        id=schedule_id,
        task=task,
        spec=spec,
        origin=origin,
        args=list(args),
        kwargs=dict(kwargs or {}),
        queue=queue,
        priority=priority,
        overlap=overlap,
        catchup=catchup,
        catchup_window_s=seconds(catchup_window),
        jitter_s=seconds(jitter),
        run_limit=run_limit,
    ).check()


class Schedules:
    """The schedules of an app (``app.schedules``).

    Args:
        app: the app (its broker's schedule store, its tasks' options).
    """

    def __init__(self, app: App) -> None:
        self.app = app

    def _info(self, definition: ScheduleDef, state: FireState | None, pause: Pause) -> ScheduleInfo:
        last = state.last_ms if state else None
        limited = (
            definition.run_limit is not None
            and state is not None
            and state.fired >= definition.run_limit
        )
        upcoming = None
        if not pause.paused and not limited:
            after_ms = max(
                last if last is not None else round(time.time() * 1000), pause.from_ms or 0
            )
            upcoming = next(fires_after(definition.spec, _at(after_ms)), None)
        return ScheduleInfo(
            definition, state, pause, upcoming, _at(last) if last is not None else None
        )

    def list(self) -> list[ScheduleInfo]:
        """Every schedule, by id: the stored ones, and this app's code ones no scheduler stored yet.

        A stored definition that cannot be read is left out (the scheduler logs it).
        """
        snapshot = self.app.broker.schedules.read()
        found: dict[str, ScheduleInfo] = {}
        for schedule_id, raw in snapshot.defs.items():
            try:
                definition = decode_def(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, ErrandsError):
                continue
            raw_state = snapshot.state.get(schedule_id)
            state = decode_state(raw_state, 0) if raw_state is not None else None
            pause = decode_pause(snapshot.pauses.get(schedule_id))
            found[schedule_id] = self._info(definition, state, pause)
        for schedule_id, definition in self.app.periodic_schedules.items():
            if schedule_id not in snapshot.defs:
                found[schedule_id] = self._info(definition, None, Pause())
        return [found[i] for i in sorted(found)]

    def get(self, schedule_id: str) -> ScheduleInfo:
        """One schedule.

        Raises:
            ScheduleNotFound: there is none with that id.
        """
        snapshot = self.app.broker.schedules.read()
        raw = snapshot.defs.get(schedule_id)
        if raw is not None:
            try:
                definition = decode_def(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, ErrandsError) as error:
                raise ScheduleNotFound(
                    f"schedule {schedule_id!r} cannot be read ({error}): delete it, or store it "
                    "again with app.schedules.upsert"
                ) from None
            raw_state = snapshot.state.get(schedule_id)
            state = decode_state(raw_state, 0) if raw_state is not None else None
            return self._info(definition, state, decode_pause(snapshot.pauses.get(schedule_id)))
        if schedule_id in self.app.periodic_schedules:
            return self._info(self.app.periodic_schedules[schedule_id], None, Pause())
        raise ScheduleNotFound(
            f"no schedule {schedule_id!r}: `errands schedules list` shows the ones there are"
        )

    def upsert(self, schedule_id: str, task: str, **options: Any) -> str:
        """Create or replace a schedule of operators; code never replaces it.

        Takes ``cron=`` or ``every=`` and the options of ``@app.periodic``. Returns 'created',
        'replaced' or 'same'.
        """
        definition = schedule_def(schedule_id, task, origin="operator", **options)
        [answer] = self.app.broker.schedules.define(
            "operator", [(definition.id, msgspec.json.encode(definition))]
        )
        return answer

    def pause(self, schedule_id: str, note: str = "") -> None:
        """Pause a schedule: no fire until it is resumed (the note says why, for others)."""
        self._change(schedule_id, "pause", note)

    def resume(self, schedule_id: str, resume_from: Literal["last", "now"] = "last") -> None:
        """Resume a paused schedule, from its last fire or from now.

        From the last fire, the catch-up policy handles the fires the pause missed; from now,
        they are skipped.
        """
        if resume_from not in ("last", "now"):
            raise ConfigurationError(f"resume_from must be 'last' or 'now', not {resume_from!r}")
        self._change(schedule_id, "resume_now" if resume_from == "now" else "resume_last")

    def _change(
        self,
        schedule_id: str,
        change: Literal["pause", "resume_last", "resume_now"],
        note: str = "",
    ) -> None:
        if not self.app.broker.schedules.pause(schedule_id, change, note):
            raise ScheduleNotFound(f"no schedule {schedule_id!r} to {change.split('_')[0]}")

    def delete(self, schedule_id: str) -> None:
        """Delete a schedule, its state and its pause.

        One declared in code is stored again by the leading scheduler: delete it from the code.
        """
        if not self.app.broker.schedules.remove([schedule_id]):
            raise ScheduleNotFound(f"no schedule {schedule_id!r} to delete")

    def trigger(self, schedule_id: str) -> AsyncResult[Any]:
        """Fire a schedule now, outside its times (its overlap policy is not applied)."""
        definition = self.get(schedule_id).definition
        queue, job = build_fire(self.app, definition, round(time.time() * 1000), jitter=False)
        [sent] = self.app.send(queue, [job])
        return AsyncResult(self.app, sent.id, queue)

    def backfill(
        self, schedule_id: str, start: datetime, end: datetime
    ) -> builtins.list[AsyncResult[Any]]:
        """Send the fires of a past range, each under its own fire id.

        A fire that already ran (and is still known) is not sent again. At most `MAX_BACKFILL`
        fires per call.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ConfigurationError("backfill takes aware datetimes (with a time zone)")
        definition = self.get(schedule_id).definition
        jobs: builtins.list[tuple[str, NewJob]] = []
        for fire in fires_after(definition.spec, start - timedelta(microseconds=1)):
            if fire > end:
                break
            if len(jobs) == MAX_BACKFILL:
                raise ConfigurationError(
                    f"the range holds more than {MAX_BACKFILL} fires: backfill it in parts"
                )
            jobs.append(
                build_fire(self.app, definition, round(fire.timestamp() * 1000), jitter=False)
            )
        by_queue: dict[str, builtins.list[NewJob]] = {}
        for queue, job in jobs:
            by_queue.setdefault(queue, []).append(job)
        handles: builtins.list[AsyncResult[Any]] = []
        for queue, queued in by_queue.items():
            for sent in self.app.send(queue, queued):
                handles.append(AsyncResult(self.app, sent.id, queue))
        return handles


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
