"""Enqueue by name: ``POST /v1/tasks/<name>`` (a route per task, with its schema), ``/v1/batch``.

Every argument is checked against the task's signature and type hints before anything is
sent (422 naming the path of each problem); a job is built by the core's own `build_job` and
leaves through `App.asend`, so middleware and limits see it as they see any other. The reply
is 202 with the job's id and queue, and ``Location`` to poll. With an idempotency key (in the
body or the ``Idempotency-Key`` header), a repeat inside the task's window answers with the
first job's id and ``"created": false``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.responses import Response

from errands.broker.types import NewJob
from errands.errors import ArgumentError, ConfigurationError
from errands.task import CallOptions, build_job
from errands.web.auth import Principal, authenticate, enqueue_scope, require
from errands.web.context import WebContext, web_context
from errands.web.errors import ApiProblems, json_reply, responses
from errands.web.schemas import (
    MAX_BATCH,
    BatchBody,
    CallBody,
    Problem,
    TaskCatalog,
    TaskShape,
    body_problems,
)

if TYPE_CHECKING:
    from errands.app import App

__all__ = ["ENQUEUED_SCHEMA", "Enqueued", "routes"]


class Enqueued(msgspec.Struct, frozen=True):
    """The reply to an enqueue.

    Attributes:
        id: the job id.
        queue: the queue it went to.
        task: the task's name.
        created: False when an idempotency key matched an earlier job, whose id this is.
        location: where to poll the job (also the ``Location`` header).
    """

    id: str
    queue: str
    task: str
    created: bool
    location: str


ENQUEUED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Enqueued",
    "properties": {
        "id": {"type": "string"},
        "queue": {"type": "string"},
        "task": {"type": "string"},
        "created": {
            "type": "boolean",
            "description": "false: an idempotency key matched an earlier job, whose id this is",
        },
        "location": {"type": "string", "description": "where to poll the job"},
    },
    "required": ["id", "queue", "task", "created", "location"],
}
_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "BatchEnqueued",
    "properties": {"jobs": {"type": "array", "items": ENQUEUED_SCHEMA}},
    "required": ["jobs"],
}
_ERRORS = (401, 403, 413, 422, 503)
_call_decoder = msgspec.json.Decoder(CallBody)
_batch_decoder = msgspec.json.Decoder(BatchBody)


def _location(job_id: str, queue: str) -> str:
    return f"/v1/jobs/{job_id}?queue={quote(queue, safe='')}"


def _idempotency_key(body_key: str | None, header: str | None, at: str) -> str | None:
    if header is None:
        return body_key
    if not 0 < len(header) <= 200:
        raise ApiProblems([Problem("$.header.Idempotency-Key", "give 1 to 200 characters")])
    if body_key is not None and body_key != header:
        raise ApiProblems(
            [Problem(f"{at}.idempotency_key", "differs from the Idempotency-Key header")]
        )
    return header


def _build(
    app: App, shape: TaskShape, call: CallBody, key: str | None, at: str
) -> tuple[str, NewJob]:
    """Check `call` against `shape` and build its job; ApiProblems with every problem."""
    problems = shape.problems(call.args, call.kwargs, at)
    if problems:
        raise ApiProblems(problems)
    options = CallOptions(
        countdown=call.countdown,
        eta=call.eta,
        priority=call.priority,
        queue=call.queue,
        idempotency_key=key,
    )
    try:
        return build_job(shape.task.options, call.args, call.kwargs, options, app.max_payload_bytes)
    except (ArgumentError, ConfigurationError) as error:
        raise ApiProblems([Problem(at, str(error))]) from None


def _enqueue_route(app: App, shape: TaskShape) -> Callable[[Request], Awaitable[Response]]:
    async def enqueue(request: Request) -> Response:
        try:
            call = _call_decoder.decode(await request.body())
        except msgspec.MsgspecError as error:
            raise ApiProblems(body_problems(error)) from None
        key = _idempotency_key(call.idempotency_key, request.headers.get("idempotency-key"), "$")
        queue, job = _build(app, shape, call, key, "$")
        [done] = await app.asend(queue, [job])
        location = _location(done.id, queue)
        reply = Enqueued(done.id, queue, shape.name, done.created, location)
        return json_reply(reply, status.HTTP_202_ACCEPTED, {"Location": location})

    return enqueue


def _add_task_route(router: APIRouter, app: App, shape: TaskShape, schema: dict[str, Any]) -> None:
    endpoint = _enqueue_route(app, shape)
    router.add_api_route(
        f"/v1/tasks/{shape.name}",
        endpoint,
        methods=["POST"],
        dependencies=[Depends(require(enqueue_scope(shape.name)))],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=None,
        name=f"enqueue {shape.name}",
        operation_id=f"enqueue_{shape.name}",
        summary=f"Enqueue {shape.name}",
        description=(
            (shape.description + "\n\n" if shape.description else "")
            + f"Needs the scope `enqueue:{shape.name}` (or `enqueue:*`)."
        ),
        responses={
            202: {
                "description": "Enqueued (or, with a known idempotency key, the first job).",
                "content": {"application/json": {"schema": ENQUEUED_SCHEMA}},
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            **responses(*_ERRORS),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            },
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                }
            ],
        },
    )


async def _batch(app: App, catalog: TaskCatalog, principal: Principal, body: bytes) -> Response:
    try:
        batch = _batch_decoder.decode(body)
    except msgspec.MsgspecError as error:
        raise ApiProblems(body_problems(error)) from None
    unknown = sorted({item.task for item in batch.jobs if item.task not in catalog.shapes})
    if unknown:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no task named {', '.join(unknown)} (registered: {catalog.known()})",
        )
    lacking = sorted(
        {item.task for item in batch.jobs if not principal.allows(enqueue_scope(item.task))}
    )
    if lacking:
        scopes = ", ".join(enqueue_scope(task) for task in lacking)
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the scope(s) {scopes}")
    problems: list[Problem] = []
    by_queue: dict[str, list[tuple[int, NewJob]]] = {}
    for index, item in enumerate(batch.jobs):
        at = f"$.jobs[{index}]"
        try:
            queue, job = _build(app, catalog.shapes[item.task], item, item.idempotency_key, at)
        except ApiProblems as found:
            problems += found.problems
            continue
        by_queue.setdefault(queue, []).append((index, job))
    if problems:
        raise ApiProblems(problems)
    replies: list[Enqueued | None] = [None] * len(batch.jobs)
    for queue, items in by_queue.items():
        answers = await app.asend(queue, [job for _, job in items])
        for (index, _), done in zip(items, answers, strict=True):
            location = _location(done.id, queue)
            task = batch.jobs[index].task
            replies[index] = Enqueued(done.id, queue, task, done.created, location)
    return json_reply({"jobs": replies}, status.HTTP_202_ACCEPTED)


def routes(app: App) -> APIRouter:
    """The enqueue routes for `app`: one per registered task, the batch, and a 404 for the rest."""
    router = APIRouter(tags=["tasks"])
    catalog = TaskCatalog(app)
    for name, shape in catalog.shapes.items():
        _add_task_route(router, app, shape, catalog.schemas[name])

    @router.post(
        "/v1/batch",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=None,
        responses={
            202: {
                "description": "Every job enqueued, in the order sent.",
                "content": {"application/json": {"schema": _BATCH_SCHEMA}},
            },
            **responses(404, *_ERRORS),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _batch_request_schema(catalog)}},
            }
        },
    )
    async def batch(request: Request, web: Annotated[WebContext, Depends(web_context)]) -> Response:
        """Enqueue many jobs in one request, all checked first, then sent in one call per queue.

        Nothing is sent when one is bad: 422 names each bad job's index and path. Needs
        ``enqueue:<task>`` for each task named (or ``enqueue:*``).
        """
        principal = await authenticate(request, web)
        return await _batch(app, catalog, principal, await request.body())

    @router.post("/v1/tasks/{name}", include_in_schema=False)
    async def unknown_task(
        name: str, request: Request, web: Annotated[WebContext, Depends(web_context)]
    ) -> Response:
        """404 for a name no task is registered under, naming those that are."""
        await authenticate(request, web)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no task named {name!r} is registered (registered: {catalog.known()})",
        )

    return router


def _batch_request_schema(catalog: TaskCatalog) -> dict[str, Any]:
    items = [
        {
            **schema,
            "properties": {**schema["properties"], "task": {"const": name}},
            "required": sorted({*schema.get("required", ()), "task"}),
        }
        for name, schema in catalog.schemas.items()
    ]
    return {
        "type": "object",
        "title": "Batch",
        "additionalProperties": False,
        "properties": {
            "jobs": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {"oneOf": items} if items else False,
            }
        },
        "required": ["jobs"],
    }
