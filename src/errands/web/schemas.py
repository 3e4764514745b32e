"""Per-task request schemas, built once from each task's type hints, and the checks they imply.

A task's `TaskShape` knows its parameters (a bound task's context left out): which may come
positionally (``args``), which by keyword (``kwargs``), which are required, and the type hint of
each. From that it gives the JSON Schema (2020-12, as OpenAPI 3.1 uses) of the body of
``POST /v1/tasks/<name>`` and checks a decoded body against it, naming the path of each problem
(``$.kwargs.x``). msgspec makes both the schema and the type checks: it is the core's JSON
library, its schemas are JSON Schema 2020-12, and its errors carry the path of the bad value.
A hint msgspec has no schema for (``Any``, no annotation, a class of the user's) takes any JSON
value.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

if TYPE_CHECKING:
    from errands.app import App
    from errands.task import Task

__all__ = [
    "MAX_BATCH",
    "MAX_COUNTDOWN_S",
    "BatchBody",
    "BatchItem",
    "CallBody",
    "Problem",
    "TaskCatalog",
    "TaskShape",
    "body_problems",
    "catalog_document",
    "inline_schema",
    "validation_path",
]

#: The most jobs one ``POST /v1/batch`` takes.
MAX_BATCH = 1000
#: The longest countdown a request may ask for (ten years, in seconds).
MAX_COUNTDOWN_S = 315_360_000.0

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CallBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of ``POST /v1/tasks/{name}``: the task's arguments and the call's options.

    Attributes:
        args: positional arguments.
        kwargs: keyword arguments.
        countdown: seconds to wait before the job may run.
        eta: the earliest time the job may run (RFC 3339 with an offset).
        priority: 0-9, higher first; the task's own when None.
        queue: the queue to send to; the task's own when None.
        idempotency_key: a second request with the same key inside the task's idempotency
            window enqueues nothing and answers with the first job.
    """

    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    countdown: Annotated[float, msgspec.Meta(ge=0, le=MAX_COUNTDOWN_S)] | None = None
    eta: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    priority: Annotated[int, msgspec.Meta(ge=0, le=9)] | None = None
    queue: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")] | None = None
    idempotency_key: _Name | None = None


class BatchItem(CallBody, kw_only=True):
    """One job of ``POST /v1/batch``: a task's name, then what `CallBody` holds.

    Attributes:
        task: the registered name of the task.
    """

    task: _Name


class BatchBody(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/batch``.

    Attributes:
        jobs: the jobs to send, 1 to `MAX_BATCH` of them; all are checked before any is sent.
    """

    jobs: Annotated[list[BatchItem], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a request (a 422 reply lists them under ``detail``).

    Attributes:
        path: where, as a JSON path into the body (``$.kwargs.x``, ``$.jobs[2].args[0]``), or
            ``$.query.<name>`` / ``$.header.<name>`` for a parameter.
        message: what is wrong with it.
    """

    path: str
    message: str


def validation_path(error: msgspec.ValidationError, prefix: str) -> Problem:
    """`error` as a `Problem`, its path put under `prefix` (msgspec writes ``... - at `$.x```)."""
    text = str(error)
    message, marker, where = text.rpartition(" - at `")
    if not marker:
        return Problem(prefix, text)
    return Problem(prefix + where.rstrip("`")[1:], message)


def _json_hint(hint: Any) -> Any:
    """`hint` when msgspec can both describe and check it, else Any (every JSON value)."""
    if hint is inspect.Parameter.empty or hint is Any:
        return Any
    try:
        msgspec.json.schema(hint)
        msgspec.convert(None, hint, strict=True)
    except msgspec.ValidationError:
        return hint  # the type is understood; None is just not one of its values
    except (TypeError, ValueError, NameError):
        return Any
    return hint


@dataclass(frozen=True)
class _Param:
    name: str
    hint: Any
    required: bool
    positional: bool
    keyword: bool

    def problem(self, value: Any, path: str) -> Problem | None:
        if self.hint is Any:
            return None
        try:
            msgspec.convert(value, self.hint, strict=True)
        except msgspec.ValidationError as error:
            return validation_path(error, path)
        return None


class TaskShape:
    """What a task's function takes, from its signature and type hints (read once).

    Args:
        task: the registered task.
    """

    def __init__(self, task: Task[..., Any]) -> None:
        self.task = task
        self.name = task.name
        fn = task.fn
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception:  # noqa: BLE001 - a hint that does not resolve takes any JSON value
            hints = {}
        kinds = inspect.Parameter
        parameters = list(inspect.signature(fn).parameters.values())
        if task.options.bind:
            parameters = parameters[1:]  # the context, which the worker passes
        self.positional: list[_Param] = []
        self.keyword: dict[str, _Param] = {}
        self.var_args: _Param | None = None
        self.var_kwargs: _Param | None = None
        for p in parameters:
            param = _Param(
                name=p.name,
                hint=_json_hint(hints.get(p.name, kinds.empty)),
                required=p.default is kinds.empty,
                positional=p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD),
                keyword=p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY),
            )
            if p.kind is kinds.VAR_POSITIONAL:
                self.var_args = param
            elif p.kind is kinds.VAR_KEYWORD:
                self.var_kwargs = param
            else:
                if param.positional:
                    self.positional.append(param)
                if param.keyword:
                    self.keyword[p.name] = param
        self._typed = any(
            p.hint is not Any
            for p in (*self.positional, *self.keyword.values(), self.var_args, self.var_kwargs)
            if p is not None
        )

    @property
    def description(self) -> str:
        """The task's docstring, cleaned (empty without one)."""
        return inspect.cleandoc(self.task.fn.__doc__ or "")

    def hints(self) -> list[Any]:
        """Every type hint the schema describes, in a fixed order."""
        params = [*self.positional, *self.keyword.values(), self.var_args, self.var_kwargs]
        return [p.hint for p in params if p is not None]

    # Checks -------------------------------------------------------------------------------

    def problems(self, args: Sequence[Any], kwargs: Mapping[str, Any], at: str) -> list[Problem]:
        """Everything wrong with calling the task with `args` and `kwargs` (none: it fits).

        `at` is the path of the call in the body (``$`` or ``$.jobs[3]``).
        """
        found = self._type_problems(args, kwargs, at) if self._typed else []
        try:
            self.task.check_call(args, kwargs)  # Python's own binding rules (errands.arity)
        except TypeError as error:
            arity = self._arity_problems(args, kwargs, at)
            found += arity or [Problem(at, str(error))]
        return found

    def _type_problems(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], at: str
    ) -> list[Problem]:
        found: list[Problem] = []
        for index, value in enumerate(args):
            param = self.positional[index] if index < len(self.positional) else self.var_args
            if param is not None and (problem := param.problem(value, f"{at}.args[{index}]")):
                found.append(problem)
        for key, value in kwargs.items():
            param = self.keyword.get(key, self.var_kwargs)
            if param is not None and (problem := param.problem(value, f"{at}.kwargs.{key}")):
                found.append(problem)
        return found

    def _arity_problems(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], at: str
    ) -> list[Problem]:
        found: list[Problem] = []
        if self.var_args is None and len(args) > len(self.positional):
            found += [
                Problem(
                    f"{at}.args[{index}]",
                    f"{self.name} takes at most {len(self.positional)} positional arguments",
                )
                for index in range(len(self.positional), len(args))
            ]
        given = {p.name for p in self.positional[: len(args)]}
        for key in kwargs:
            if key in given:
                found.append(Problem(f"{at}.kwargs.{key}", "given positionally too"))
            elif key not in self.keyword and self.var_kwargs is None:
                known = ", ".join(self.keyword) or "none"
                found.append(
                    Problem(f"{at}.kwargs.{key}", f"unexpected argument (keywords: {known})")
                )
        for index, param in enumerate(self.positional):
            if param.required and index >= len(args) and param.name not in kwargs:
                where = f"{at}.kwargs.{param.name}" if param.keyword else f"{at}.args[{index}]"
                found.append(Problem(where, f"missing required argument {param.name!r}"))
        for param in self.keyword.values():
            if param.required and not param.positional and param.name not in kwargs:
                where = f"{at}.kwargs.{param.name}"
                found.append(Problem(where, f"missing required argument {param.name!r}"))
        return found

    # The schema ---------------------------------------------------------------------------

    def request_schema(self, schemas: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
        """The JSON Schema of this task's request body; `schemas` gives each hint's schema."""

        def of(param: _Param) -> dict[str, Any]:
            return dict(schemas[param.hint]) if param.hint is not Any else {}

        args: dict[str, Any] = {"type": "array", "description": "positional arguments"}
        if self.positional:
            args["prefixItems"] = [{**of(p), "title": p.name} for p in self.positional]
        args["items"] = of(self.var_args) if self.var_args else False
        kwargs: dict[str, Any] = {
            "type": "object",
            "description": "keyword arguments",
            "properties": {name: of(p) for name, p in self.keyword.items()},
            "additionalProperties": of(self.var_kwargs) if self.var_kwargs else False,
        }
        keyword_only = [p.name for p in self.keyword.values() if p.required and not p.positional]
        if keyword_only:
            kwargs["required"] = keyword_only
        schema: dict[str, Any] = {
            "type": "object",
            "title": f"{self.name} call",
            "additionalProperties": False,
            "properties": {"args": args, "kwargs": kwargs, **_OPTION_SCHEMAS},
        }
        required: list[str] = ["kwargs"] if keyword_only else []
        either: list[dict[str, Any]] = []
        for index, param in enumerate(self.positional):
            if not param.required:
                continue
            by_position = {"required": ["args"], "properties": {"args": {"minItems": index + 1}}}
            if not param.keyword:
                either.append(by_position)
                continue
            by_name = {"required": ["kwargs"], "properties": {"kwargs": {"required": [param.name]}}}
            either.append({"anyOf": [by_position, by_name]})
        if required:
            schema["required"] = required
        if either:
            schema["allOf"] = either
        return schema


_OPTION_SCHEMAS: dict[str, Any] = {
    "countdown": {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": MAX_COUNTDOWN_S,
        "description": "seconds to wait before the job may run",
    },
    "eta": {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "the earliest time the job may run (RFC 3339, with an offset); "
        "not with countdown",
    },
    "priority": {
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": 9,
        "description": "0-9, higher first; the task's own when absent",
    },
    "queue": {
        "type": ["string", "null"],
        "pattern": r"^[A-Za-z0-9_.\-]{1,100}$",
        "description": "the queue to send to; the task's own when absent",
    },
    "idempotency_key": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": 200,
        "description": "a repeat inside the task's idempotency window answers with the first "
        "job (created: false); also the Idempotency-Key header",
    },
}


class TaskCatalog:
    """The `TaskShape` of every task of an app, with their schemas, built once.

    Args:
        app: the app whose registered tasks it describes.
        ref_template: how a schema refers to a shared definition (``{name}`` is replaced).
    """

    def __init__(self, app: App, ref_template: str = "#/components/schemas/{name}") -> None:
        self.shapes = {name: TaskShape(task) for name, task in sorted(app.tasks.items())}
        hints = _unique(h for shape in self.shapes.values() for h in shape.hints() if h is not Any)
        described, self.components = msgspec.json.schema_components(
            hints, ref_template=ref_template
        )
        by_hint = dict(zip(hints, described, strict=True))
        self.schemas = {name: shape.request_schema(by_hint) for name, shape in self.shapes.items()}

    def known(self) -> str:
        """The task names, for a message (``none`` when there are none)."""
        return ", ".join(self.shapes) or "none"


def _unique(hints: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for hint in hints:
        if not any(hint == kept for kept in seen):
            seen.append(hint)
    return seen


def inline_schema(kind: Any) -> dict[str, Any]:
    """The JSON Schema msgspec gives of `kind`, every definition written in place (no $ref).

    A route's reply schema then stands alone in the OpenAPI document, whichever module wrote
    it; the read model's types have no cycles, so this ends.
    """
    root, definitions = msgspec.json.schema_components([kind], ref_template="{name}")

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"$ref"}:
                return resolve(definitions[node["$ref"]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(root[0])
    return resolved


def body_problems(error: msgspec.MsgspecError, at: str = "$") -> list[Problem]:
    """A body msgspec refused, as problems: not JSON at all, or a value of the wrong kind."""
    if isinstance(error, msgspec.ValidationError):
        return [validation_path(error, at)]
    return [Problem(at, f"the body is not JSON ({error}): send a JSON object")]


def catalog_document(app: App) -> dict[str, Any]:
    """One JSON Schema document of every task's request body (``errands schema APP``)."""
    catalog = TaskCatalog(app, ref_template="#/$defs/{name}")
    document: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "errands task requests",
        "description": "The body of POST /v1/tasks/<name>, per task (errands schema).",
        "tasks": catalog.schemas,
    }
    if catalog.components:
        document["$defs"] = catalog.components
    return document
