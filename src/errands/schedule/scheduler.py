"""`Scheduler`: fires schedules, as the one leader among any number of schedulers.

Each scheduler takes or renews the leader lease every `RENEW_S`; one holds it. The leader keeps
every schedule's next fire in a heap and sleeps until the soonest; at a fire it builds the job
under the fire's id (``<schedule id>@<nominal ms>``), sends it through the app (middleware, then
broker), then stores the schedules' fire state under its fence. A leader that dies leaves the
lease to expire: another scheduler takes over within `LEASE_S` + `RENEW_S` (and not before
`LEASE_S` - `RENEW_S`) and carries on from the stored state, the fires due meanwhile handled by
catch-up; a fire sent but not recorded is among them, so it is sent again under the same id (the
broker enqueues it once) or, coalesced by ``latest`` with later fires, counted as skipped.

Late fires follow each schedule's catch-up policy (`ScheduleDef.catchup`), fires whose previous run
is still going its overlap policy (`ScheduleDef.overlap`). A definition that cannot be read is
logged and skipped; Redis failing (unreachable, full, read-only) delays fires, never loses them:
nothing is recorded until the jobs are sent, and late fires are handled by catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from errands.broker.types import NewJob
from errands.errors import BrokerError, ConfigurationError, ErrandsError
from errands.schedule.fire import build_fire
from errands.schedule.records import (
    FireState,
    Pause,
    ScheduleDef,
    decode_def,
    decode_pause,
    decode_state,
)
from errands.schedule.spec import fires_after
from errands.states import JobState

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["LEASE_S", "RENEW_S", "Scheduler"]

log = logging.getLogger("errands.beat")

#: How long a leader's lease lasts unrenewed: another scheduler takes over within
#: LEASE_S + RENEW_S of the leader's death. It must be several times RENEW_S, so that a leader
#: busy with a long tick or a slow Redis keeps it.
LEASE_S = 10.0
#: How often every scheduler takes or renews the lease.
RENEW_S = 2.0
#: A bound on the fires one schedule looks at in one step (a cron of every second that nobody
#: ran for a day): beyond it, the rest of the missed fires are skipped over, not counted one by one.
MAX_SCAN = 100_000
#: At most this many fires of one schedule are sent in one step (catchup "all"); the rest follow.
MAX_SEND = 1_000
_UNFINISHED = {JobState.QUEUED, JobState.SCHEDULED, JobState.ACTIVE}


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _catch_up(d: ScheduleDef, st: FireState, after: int, now_ms: int) -> list[int]:
    """The nominal times to run, of the fires after `after` due by `now_ms`.

    By the catch-up policy of `d`; `st` counts the missed and the coalesced fires, and its last
    fire moves on to the last one due.
    """
    window_from = now_ms - round(d.catchup_window_s * 1000)
    inside: list[int] = []
    scanned = 0
    fires = fires_after(d.spec, _at(after))
    while (fire := next(fires, None)) is not None:
        nominal = _ms(fire)
        if nominal > now_ms:
            break
        st.last_ms = nominal
        scanned += 1
        if nominal < window_from:
            st.missed += 1
            if scanned >= MAX_SCAN:  # skip over the rest of what is too late anyway
                fires, scanned = fires_after(d.spec, _at(window_from - 1)), 0
            continue
        inside.append(nominal)
        if len(inside) >= MAX_SEND and d.catchup == "all":
            break
    if d.catchup == "latest" and len(inside) > 1:
        st.skipped += len(inside) - 1
        inside = inside[-1:]
    return inside


class Scheduler:
    """One scheduler of an app (``errands beat APP``).

    Args:
        app: the app whose schedules it fires (``@app.periodic`` and the stored ones).
        owner: its name in the lease (host, pid and a random part by default).
        lease_s: see `LEASE_S`; `renew_s`: see `RENEW_S`.
        clock: the time in seconds (a `ManualClock` in tests).
    """

    def __init__(
        self,
        app: App,
        *,
        owner: str | None = None,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < renew_s * 2 <= lease_s:
            raise ConfigurationError(
                f"renew_s ({renew_s}) must be above 0 and at most half of lease_s ({lease_s})"
            )
        self.app = app
        self.store = app.broker.schedules
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease_ms = round(lease_s * 1000)
        self.renew_s = renew_s
        self.clock = clock
        self.fence = 0
        self._version = -1
        self._defs: dict[str, ScheduleDef] = {}
        self._state: dict[str, FireState] = {}
        self._pauses: dict[str, Pause] = {}
        self._due: list[tuple[int, str]] = []  # (next nominal ms, schedule id)
        self._renew_at = 0.0

    @property
    def leading(self) -> bool:
        """Whether it holds the lease (as of its last step)."""
        return self.fence != 0

    def _now_ms(self) -> int:
        return round(self.clock() * 1000)

    # Code schedules ----------------------------------------------------------------------------

    async def reconcile(self) -> dict[str, str]:
        """Store the app's code schedules; drop stored code schedules the code no longer has.

        Returns:
            per schedule id, what happened: created, replaced, same, kept (an operator's), or
            removed.
        """
        code = self.app.periodic_schedules
        answers: dict[str, str] = {}
        if code:
            items = [(s.id, msgspec.json.encode(s)) for s in code.values()]
            answers = dict(zip(code, await self.store.adefine("code", items), strict=True))
        stored = await self.store.aread()
        gone = [i for i in stored.defs if i not in code]
        if gone and await self.store.aremove(gone, only="code"):
            left = (await self.store.aread()).defs
            answers.update({i: "removed" for i in gone if i not in left})
        return answers

    # The loop ------------------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Reconcile, then lead or stand by until `stopping` is set; give the lease up then."""
        await self._until_reconciled(stopping)
        log.info(
            "scheduler %s started (%d schedules in code)",
            self.owner,
            len(self.app.periodic_schedules),
        )
        try:
            while not stopping.is_set():
                try:
                    wait_s = await self.step()
                except BrokerError as error:
                    log.warning("scheduler step failed (%s); trying again", error)
                    wait_s = min(self.renew_s, 1.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=max(0.0, wait_s))
        finally:
            if self.fence:
                with contextlib.suppress(BrokerError):
                    await self.store.resign(self.owner, self.fence)
                self.fence = 0
            log.info("scheduler %s stopped", self.owner)

    async def _until_reconciled(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                answers = await self.reconcile()
            except BrokerError as error:
                log.warning("storing the code schedules failed (%s); trying again", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=self.renew_s)
                continue
            for schedule_id, answer in sorted(answers.items()):
                if answer != "same":
                    log.info("schedule %s: %s", schedule_id, answer)
            return

    async def step(self) -> float:
        """Renew the lease when due, and fire what is due if leading.

        Returns:
            the seconds until the next step is due.
        """
        now = self.clock()
        if now >= self._renew_at:
            await self._lead()
            self._renew_at = now + self.renew_s
        if not self.fence:
            return max(0.0, self._renew_at - now)
        if await self.store.aversion() != self._version:
            await self._load()
        await self._fire_due(self._now_ms())
        until_renew = self._renew_at - self.clock()
        if not self._due:
            return max(0.0, until_renew)
        until_fire = self._due[0][0] / 1000 - self.clock()
        return max(0.0, min(until_renew, until_fire))

    async def _lead(self) -> None:
        fence, _ = await self.store.lead(self.owner, self.lease_ms)
        if fence and fence != self.fence:
            log.info("scheduler %s leads (fence %d)", self.owner, fence)
            self._version = -1  # a new leadership reads everything again
        elif not fence and self.fence:
            log.warning("scheduler %s lost the lead to another scheduler", self.owner)
        self.fence = fence

    async def _load(self) -> None:
        snapshot = await self.store.aread()
        missing = [s for i, s in self.app.periodic_schedules.items() if i not in snapshot.defs]
        if missing:
            # The store lost them (a Redis restarted empty, a flush, a delete by hand): code
            # schedules belong to the code, so they are stored again, with fresh fire state.
            log.warning(
                "schedules of the code missing from Redis, stored again: %s",
                ", ".join(s.id for s in missing),
            )
            await self.store.adefine("code", [(s.id, msgspec.json.encode(s)) for s in missing])
            snapshot = await self.store.aread()
        now = self._now_ms()
        self._defs = {}
        for schedule_id, raw in snapshot.defs.items():
            try:
                self._defs[schedule_id] = decode_def(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, ErrandsError) as error:
                log.error("schedule %s cannot be read and is skipped: %s", schedule_id, error)
        self._state = {i: decode_state(snapshot.state.get(i), now) for i in self._defs}
        self._pauses = {i: decode_pause(snapshot.pauses.get(i)) for i in self._defs}
        self._version = snapshot.version
        self._due = []
        for schedule_id in self._defs:
            self._push(schedule_id, now)
        fresh = [
            (i, msgspec.json.encode(s)) for i, s in self._state.items() if i not in snapshot.state
        ]
        if fresh and not await self.store.advance(self.owner, self.fence, fresh):
            self.fence = 0

    def _push(self, schedule_id: str, now_ms: int) -> None:
        """Put the schedule's next fire (or, with one buffered, the next look) in the heap."""
        d, st, pause = self._defs[schedule_id], self._state[schedule_id], self._pauses[schedule_id]
        if pause.paused or (d.run_limit is not None and st.fired >= d.run_limit):
            return
        if st.buffered_ms is not None:
            heapq.heappush(self._due, (now_ms + 1000, schedule_id))  # look again in a second
            return
        after = max(st.last_ms if st.last_ms is not None else st.since_ms, pause.from_ms or 0)
        upcoming = next(fires_after(d.spec, _at(after)), None)
        if upcoming is not None:
            heapq.heappush(self._due, (_ms(upcoming), schedule_id))

    # Firing ------------------------------------------------------------------------------------

    async def _fire_due(self, now_ms: int) -> None:
        due: list[str] = []
        while self._due and self._due[0][0] <= now_ms:
            _, schedule_id = heapq.heappop(self._due)
            if schedule_id in self._defs and schedule_id not in due:
                due.append(schedule_id)
        if not due:
            return
        sends: dict[str, list[NewJob]] = {}
        states: dict[str, FireState] = {}
        running = await self._running(due)
        for schedule_id in due:
            states[schedule_id] = await self._plan(schedule_id, now_ms, sends, running)
        try:
            for queue, jobs in sends.items():
                await self.app.asend(queue, jobs)
            stored = await self.store.advance(
                self.owner, self.fence, [(i, msgspec.json.encode(s)) for i, s in states.items()]
            )
        except BrokerError:
            for schedule_id in due:  # nothing recorded: the same fires are looked at again
                heapq.heappush(self._due, (now_ms, schedule_id))
            raise
        if not stored:
            log.warning(
                "scheduler %s lost the lead while firing; the new leader goes on", self.owner
            )
            self.fence = 0
            return
        self._state.update(states)
        for schedule_id in due:
            self._push(schedule_id, now_ms)

    async def _running(self, due: list[str]) -> set[str]:
        """Which previous jobs of the due schedules are unfinished (read in one round trip)."""
        watched = [
            (self._queue(self._defs[i]), job)
            for i in due
            if self._defs[i].overlap != "allow_all" and (job := self._state[i].last_job)
        ]
        states = await self.app.broker.ajob_states(watched)
        return {
            job for (_, job), st in zip(watched, states, strict=True) if st.state in _UNFINISHED
        }

    def _queue(self, d: ScheduleDef) -> str:
        return d.queue or self.app.options_for(d.task).queue

    async def _plan(
        self, schedule_id: str, now_ms: int, sends: dict[str, list[NewJob]], running: set[str]
    ) -> FireState:
        """The schedule's fires due by `now_ms`: jobs added to `sends`; its new state returned.

        `running`: the previous jobs still unfinished, as read before this step.
        """
        d, pause = self._defs[schedule_id], self._pauses[schedule_id]
        st = msgspec.structs.replace(self._state[schedule_id])
        queue = self._queue(d)
        if st.buffered_ms is not None:
            if st.last_job in running:
                return st
            self._send(d, queue, st.buffered_ms, sends, st)
            st.buffered_ms = None
        after = max(st.last_ms if st.last_ms is not None else st.since_ms, pause.from_ms or 0)
        for nominal in _catch_up(d, st, after, now_ms):
            if d.run_limit is not None and st.fired >= d.run_limit:
                break
            if d.overlap != "allow_all" and st.last_job in running:
                if d.overlap == "skip" or (
                    d.overlap == "buffer_one" and st.buffered_ms is not None
                ):
                    st.skipped += 1
                    continue
                if d.overlap == "buffer_one":
                    st.buffered_ms = nominal
                    continue
                assert st.last_job is not None
                await self.app.broker.acancel(queue, st.last_job)  # cancel_other
            self._send(d, queue, nominal, sends, st)
        return st

    def _send(
        self,
        d: ScheduleDef,
        queue: str,
        nominal: int,
        sends: dict[str, list[NewJob]],
        st: FireState,
    ) -> None:
        _, job = build_fire(self.app, d, nominal)
        sends.setdefault(queue, []).append(job)
        st.fired += 1
        st.last_job = job.id
