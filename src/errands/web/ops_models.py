"""The JSON the operator routes answer with: the shapes ``errands ... --json`` prints.

Each model mirrors a CLI document (``errands queues --json``, ``errands workers --json``,
``errands dead list --json``, ``errands schedules list --json``): the routes build the CLI's own
documents and these models only declare them, in ``/openapi.json``. Times are ISO 8601 strings
in UTC, durations numbers of seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "DeadError",
    "DeadJobModel",
    "DeadPageModel",
    "DeadRetryFilter",
    "DeadRetryRequest",
    "DeletedModel",
    "ErrorModel",
    "PausedModel",
    "PurgedModel",
    "QueueDetailModel",
    "QueueModel",
    "QueuePageModel",
    "RetriedModel",
    "ScheduleChangeRequest",
    "ScheduleListModel",
    "ScheduleModel",
    "ThroughputModel",
    "TriggeredModel",
    "WorkerModel",
    "WorkerPageModel",
]


class ErrorModel(BaseModel):
    """An error reply: what went wrong and what to do."""

    detail: str


class QueueModel(BaseModel):
    """A queue at a glance (`errands.broker.views.QueueSummary`, as ``errands queues --json``)."""

    name: str
    ready: int
    delayed: int
    active: int
    dead: int
    paused: bool
    oldest_ready_age_s: float | None
    consumers: int
    stats: dict[str, int]


class QueuePageModel(BaseModel):
    """A page of queues, by name."""

    queues: list[QueueModel]
    cursor: str | None = Field(description="give it back as ?cursor= for the next page")


class ThroughputModel(BaseModel):
    """One minute of a queue's throughput; the counts are null for a minute nobody sampled."""

    minute: str = Field(description="the minute's start, ISO 8601 UTC")
    enqueued: int | None
    succeeded: int | None
    retried: int | None
    dead: int | None


class QueueDetailModel(QueueModel):
    """A queue with its throughput per minute over the last hour, oldest first."""

    throughput: list[ThroughputModel]


class PausedModel(BaseModel):
    """What a pause or resume did."""

    queue: str
    paused: bool
    changed: bool = Field(description="false when the queue already was so")


class PurgedModel(BaseModel):
    """What a purge deleted."""

    queue: str
    deleted: int
    delayed: bool
    more: bool = Field(description="jobs were left (more than one request deletes): call again")


class WorkerModel(BaseModel):
    """A live worker (as ``errands workers --json``)."""

    id: str
    host: str
    pid: int
    queues: list[str]
    pool: str
    concurrency: int
    processed: int
    holding: list[str]
    seen_at: str | None
    held: int
    started_at: str | None
    lease_s: float | None


class WorkerPageModel(BaseModel):
    """A page of live workers, by id."""

    workers: list[WorkerModel]
    cursor: str | None


class DeadError(BaseModel):
    """What a dead job failed with (its traceback: ``GET /v1/jobs/{id}``)."""

    type: str
    message: str


class DeadJobModel(BaseModel):
    """A dead job (as ``errands dead list --json``), with its arguments for ``read:payloads``."""

    id: str
    queue: str
    task: str
    died_at: str | None
    attempts: int
    error: DeadError | None
    args: list[Any] | None = Field(None, description="null without the read:payloads scope")
    kwargs: dict[str, Any] | None = Field(None, description="null without read:payloads")


class DeadPageModel(BaseModel):
    """A page of dead jobs; a filtered page may hold fewer than asked and still have a cursor."""

    queue: str
    jobs: list[DeadJobModel]
    cursor: str | None


class DeadRetryFilter(BaseModel):
    """Which dead jobs to retry: every field left out matches all."""

    task: str | None = None
    error_type: str | None = None


class DeadRetryRequest(BaseModel):
    """Dead jobs to move back to ready: the given ids, or those a filter matches."""

    queue: str
    ids: list[str] | None = Field(None, description="these jobs (at most the per-request cap)")
    filter: DeadRetryFilter | None = Field(None, description="else the oldest that match this")
    limit: int = Field(100, ge=1, description="with a filter: at most this many")


class RetriedModel(BaseModel):
    """What a retry moved back to ready."""

    queue: str
    retried: list[str]
    not_dead: list[str] = Field(description="given ids that were not in the dead set")
    budget_left: int = Field(description="jobs this token may still retry in this minute")


class DeletedModel(BaseModel):
    """What a delete did."""

    queue: str
    id: str
    deleted: bool


class ScheduleModel(BaseModel):
    """A schedule (as ``errands schedules list --json``)."""

    id: str
    task: str
    when: str
    tz: str
    origin: Literal["code", "operator"] = Field(description="code: declared by @app.periodic")
    paused: bool
    note: str
    next_fire: str | None
    last_fire: str | None
    fired: int
    missed: int
    skipped: int


class ScheduleListModel(BaseModel):
    """Every schedule, by id."""

    schedules: list[ScheduleModel]


class ScheduleChangeRequest(BaseModel):
    """A pause: why, for the other operators."""

    note: str = Field("", max_length=500)


class TriggeredModel(BaseModel):
    """The job a trigger sent."""

    schedule: str
    id: str
    queue: str
