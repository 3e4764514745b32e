"""One fire of a schedule as a job: its id, its arguments, its nominal time."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from errands.broker.types import NewJob
from errands.schedule.records import ScheduleDef
from errands.schedule.spec import fire_id
from errands.task import CallOptions, build_job

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["FIRE_ID_TTL_S", "build_fire"]

#: How long a fire's id holds as an idempotency key, so that a fire sent again (a replay after a
#: takeover, a backfill over fires that ran) is not enqueued twice. It must outlast a takeover
#: by far, and the results of tasks that keep none.
FIRE_ID_TTL_S = 86_400.0


def build_fire(
    app: App, schedule: ScheduleDef, nominal_ms: int, *, jitter: bool = True
) -> tuple[str, NewJob]:
    """The job of `schedule`'s fire at `nominal_ms`, and its queue.

    Its id is the fire's (`fire_id`), also held as its idempotency key; the task sees the
    nominal time as ``ctx.scheduled_for``. With `jitter`, it waits a random part of the
    schedule's jitter first.
    """
    queue = schedule.queue or app.options_for(schedule.task).queue
    fid = fire_id(schedule.id, datetime.fromtimestamp(nominal_ms / 1000, UTC))
    wait = random.uniform(0, schedule.jitter_s) if jitter and schedule.jitter_s else None
    options = CallOptions(
        queue=queue,
        priority=schedule.priority,
        job_id=fid,
        idempotency_key=fid,
        idempotency_ttl=FIRE_ID_TTL_S,
        countdown=wait,
    )
    return build_job(
        app.options_for(schedule.task, queue),
        schedule.args,
        schedule.kwargs,
        options,
        app.max_payload_bytes,
        scheduled_for=nominal_ms / 1000,
    )
