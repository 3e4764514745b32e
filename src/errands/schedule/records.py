"""What the schedule store keeps: a schedule's definition, its fire state, its pause.

All three are JSON in the store (`errands.broker.beat`); these structs read and write them.
A record that cannot be read is reported and skipped by the scheduler, never fatal.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from errands.broker.beat import Origin
from errands.errors import ConfigurationError
from errands.schedule.spec import ScheduleSpec

__all__ = [
    "CATCHUP_WINDOW_S",
    "Catchup",
    "FireState",
    "Overlap",
    "Pause",
    "ScheduleDef",
    "decode_def",
    "decode_pause",
    "decode_state",
]

#: What happens to a fire whose previous run has not finished: `skip` it (the default),
#: `buffer_one` (run it once the previous ends; later ones meanwhile are skipped), `allow_all`
#: (run it beside), or `cancel_other` (cancel the previous run, then run it).
Overlap = Literal["skip", "buffer_one", "allow_all", "cancel_other"]
#: Fires missed while no scheduler ran, inside the catch-up window: run the `latest` only (the
#: default) or `all` of them. Fires older than the window are counted as missed.
Catchup = Literal["latest", "all"]
CATCHUP_WINDOW_S = 3600.0


class ScheduleDef(msgspec.Struct, frozen=True, omit_defaults=True):
    """A schedule: which task it sends, with which arguments, when, and what to do when late.

    Attributes:
        id: its stable id (the task name by default).
        task: the task it sends.
        spec: when it fires.
        origin: who made it ("code": ``@app.periodic``; "operator": ``app.schedules.upsert``).
        args: positional arguments of each job.
        kwargs: keyword arguments of each job.
        queue: the queue (the task's own by default).
        priority: the priority (the task's own by default).
        overlap: see `Overlap`.
        catchup: see `Catchup`.
        catchup_window_s: how late a fire may still run.
        jitter_s: each job waits a random 0 to `jitter_s` seconds after its nominal time (its
            identity stays the nominal time).
        run_limit: at most this many fires, then the schedule stops (None: no limit).
    """

    id: str
    task: str
    spec: ScheduleSpec
    origin: Origin = "code"
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    queue: str | None = None
    priority: int | None = None
    overlap: Overlap = "skip"
    catchup: Catchup = "latest"
    catchup_window_s: float = CATCHUP_WINDOW_S
    jitter_s: float = 0.0
    run_limit: int | None = None

    def check(self) -> ScheduleDef:
        """The definition itself, once it is known to be valid (raises `ConfigurationError`)."""
        if not self.id or "@" in self.id:
            raise ConfigurationError(
                "a schedule id must be non-empty and without '@' (fire ids are id@time), "
                f"not {self.id!r}"
            )
        self.spec.check()
        if self.overlap not in ("skip", "buffer_one", "allow_all", "cancel_other"):
            raise ConfigurationError(
                "overlap must be 'skip', 'buffer_one', 'allow_all' or 'cancel_other', "
                f"not {self.overlap!r}"
            )
        if self.catchup not in ("latest", "all"):
            raise ConfigurationError(f"catchup must be 'latest' or 'all', not {self.catchup!r}")
        if not 0 <= self.catchup_window_s < float("inf"):
            raise ConfigurationError("catchup_window must be a finite number of seconds >= 0")
        if not 0 <= self.jitter_s < float("inf"):
            raise ConfigurationError("jitter must be a finite number of seconds >= 0")
        if self.run_limit is not None and self.run_limit < 1:
            raise ConfigurationError(f"run_limit must be at least 1, not {self.run_limit}")
        return self


class FireState(msgspec.Struct, omit_defaults=True):
    """What the leader knows of a schedule's fires (it alone writes it).

    Attributes:
        since_ms: when the schedule was first seen by a leader: it fires after that.
        last_ms: the nominal time of the last fire handled (run, skipped or missed).
        fired: fires enqueued.
        missed: fires older than the catch-up window when a leader got to them.
        skipped: fires not run: overlapping a running one, or coalesced in a catch-up.
        last_job: the job id of the last fire enqueued.
        buffered_ms: a fire waiting for the previous run to end (overlap ``buffer_one``).
    """

    since_ms: int
    last_ms: int | None = None
    fired: int = 0
    missed: int = 0
    skipped: int = 0
    last_job: str | None = None
    buffered_ms: int | None = None


class Pause(msgspec.Struct, omit_defaults=True):
    """An operator's pause (``paused``), or a resume that skips what the pause missed (``from``)."""

    paused: bool = False
    note: str = ""
    at: int | None = None
    from_ms: int | None = msgspec.field(default=None, name="from")


_def_decoder = msgspec.json.Decoder(ScheduleDef)
_state_decoder = msgspec.json.Decoder(FireState)
_pause_decoder = msgspec.json.Decoder(Pause)


def decode_def(raw: bytes) -> ScheduleDef:
    """A stored definition (raises `msgspec.DecodeError` or `ConfigurationError` if unusable)."""
    return _def_decoder.decode(raw).check()


def decode_state(raw: bytes | None, now_ms: int) -> FireState:
    """A stored fire state; a fresh one (first seen now) when there is none or it is unreadable."""
    if raw is not None:
        try:
            return _state_decoder.decode(raw)
        except msgspec.DecodeError:
            pass
    return FireState(since_ms=now_ms)


def decode_pause(raw: bytes | None) -> Pause:
    """A stored pause; none (not paused) when there is none or it is unreadable."""
    if raw is not None:
        try:
            return _pause_decoder.decode(raw)
        except msgspec.DecodeError:
            pass
    return Pause()
