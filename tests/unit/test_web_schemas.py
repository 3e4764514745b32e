"""Per-task request schemas: built from the type hints, and the checks name each problem's path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from errands import App, TaskContext
from errands.web.schemas import (
    CallBody,
    Problem,
    TaskCatalog,
    body_problems,
    catalog_document,
    inline_schema,
    validation_path,
)


class Opaque:
    """A class msgspec has no schema for: its parameter takes any JSON value."""


@dataclass
class Point:
    x: int
    y: int


def _app() -> App:
    app = App("memory://", namespace="schemas")

    @app.task(name="add")
    def add(x: int, y: int = 0) -> int:
        return x + y

    @app.task(name="free")
    def free(a, b: Any, c: Opaque) -> None:  # type: ignore[no-untyped-def]
        """No hint that msgspec can check."""

    @app.task(name="shaped")
    def shaped(p: Point, /, *tags: str, scale: float, **extra: int) -> None:
        """Positional-only, var-positional, keyword-only, var-keyword."""

    @app.task(name="bound", bind=True)
    def bound(ctx: TaskContext, items: list[int]) -> int:
        return len(items)

    return app


@pytest.fixture(scope="module")
def catalog() -> TaskCatalog:
    return TaskCatalog(_app())


def _problems(catalog: TaskCatalog, name: str, *args: Any, **kwargs: Any) -> list[Problem]:
    return catalog.shapes[name].problems(list(args), kwargs, "$")


def test_a_call_that_fits_has_no_problem(catalog: TaskCatalog) -> None:
    assert _problems(catalog, "add", 1, 2) == []
    assert _problems(catalog, "add", 1) == []
    assert _problems(catalog, "add", x=1, y=2) == []
    assert _problems(catalog, "shaped", {"x": 1, "y": 2}, "a", "b", scale=2, more=3) == []
    assert _problems(catalog, "bound", [1, 2]) == []


def test_wrong_types_are_named_by_path_nested_too(catalog: TaskCatalog) -> None:
    assert _problems(catalog, "add", "1", 2) == [Problem("$.args[0]", "Expected `int`, got `str`")]
    assert _problems(catalog, "add", 1, y=True) == [
        Problem("$.kwargs.y", "Expected `int`, got `bool`")
    ]
    found = _problems(catalog, "shaped", {"x": 1, "y": "2"}, 3, scale="big", more="x")
    assert [p.path for p in found] == [
        "$.args[0].y",
        "$.args[1]",
        "$.kwargs.scale",
        "$.kwargs.more",
    ]
    assert [p.path for p in _problems(catalog, "bound", [1, "x"])] == ["$.args[0][1]"]


def test_arity_problems_name_the_argument(catalog: TaskCatalog) -> None:
    assert [p.path for p in _problems(catalog, "add")] == ["$.kwargs.x"]
    assert [p.path for p in _problems(catalog, "add", 1, 2, 3)] == ["$.args[2]"]
    assert [p.path for p in _problems(catalog, "add", 1, x=1)] == ["$.kwargs.x"]
    assert [p.path for p in _problems(catalog, "add", 1, z=1)] == ["$.kwargs.z"]
    assert [p.path for p in _problems(catalog, "shaped")] == ["$.args[0]", "$.kwargs.scale"]
    assert [p.path for p in _problems(catalog, "bound")] == ["$.kwargs.items"]


def test_hints_without_a_schema_take_any_json_value(catalog: TaskCatalog) -> None:
    assert _problems(catalog, "free", {"any": [1]}, None, "x") == []
    args = catalog.schemas["free"]["properties"]["args"]
    assert args["prefixItems"] == [{"title": "a"}, {"title": "b"}, {"title": "c"}]


def test_the_schema_says_positions_keywords_and_requirements(catalog: TaskCatalog) -> None:
    add = catalog.schemas["add"]
    assert add["additionalProperties"] is False
    assert add["properties"]["args"]["prefixItems"] == [
        {"type": "integer", "title": "x"},
        {"type": "integer", "title": "y"},
    ]
    assert add["properties"]["args"]["items"] is False
    assert add["properties"]["kwargs"]["properties"] == {
        "x": {"type": "integer"},
        "y": {"type": "integer"},
    }
    assert add["allOf"] == [
        {
            "anyOf": [
                {"required": ["args"], "properties": {"args": {"minItems": 1}}},
                {"required": ["kwargs"], "properties": {"kwargs": {"required": ["x"]}}},
            ]
        }
    ]
    shaped = catalog.schemas["shaped"]
    assert shaped["properties"]["args"]["items"] == {"type": "string"}
    assert shaped["properties"]["kwargs"]["required"] == ["scale"]
    assert shaped["properties"]["kwargs"]["additionalProperties"] == {"type": "integer"}
    assert shaped["required"] == ["kwargs"]
    assert "p" not in shaped["properties"]["kwargs"]["properties"]  # positional-only
    assert shaped["properties"]["args"]["prefixItems"][0]["$ref"] == "#/components/schemas/Point"
    assert "Point" in catalog.components
    assert "ctx" not in str(catalog.schemas["bound"])


def test_errands_schema_document_refers_to_its_own_defs() -> None:
    document = catalog_document(_app())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    point = document["tasks"]["shaped"]["properties"]["args"]["prefixItems"][0]
    assert point["$ref"] == "#/$defs/Point"
    assert set(document["$defs"]) == {"Point"}


def test_body_errors_carry_their_path() -> None:
    decoder = msgspec.json.Decoder(CallBody)
    with pytest.raises(msgspec.ValidationError) as wrong:
        decoder.decode(b'{"priority": 10}')
    assert body_problems(wrong.value) == [Problem("$.priority", "Expected `int` <= 9")]
    with pytest.raises(msgspec.DecodeError) as garbage:
        decoder.decode(b"{")
    assert body_problems(garbage.value)[0].path == "$"
    error = msgspec.ValidationError("Expected `int`, got `str` - at `$[0].x`")
    assert validation_path(error, "$.jobs[2].args") == Problem(
        "$.jobs[2].args[0].x", "Expected `int`, got `str`"
    )


def test_inline_schema_has_no_refs() -> None:
    schema = inline_schema(list[Point])
    assert "$ref" not in str(schema)
    assert schema["items"]["properties"]["x"] == {"type": "integer"}
