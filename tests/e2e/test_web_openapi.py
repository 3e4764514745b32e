"""Schemathesis against the live server's /openapi.json: every operation, bounded examples.

No generated request may get a 5xx, and every reply must match what the document says of it
(status, content type, headers, body schema). The server runs without a worker, so jobs the
generated requests enqueue never run (a generated ``slow`` could sleep for ever); every
operation in the document is covered, those other route modules add included.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.web_api_support import Stack, api_stack, task

_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with api_stack(redis_url, tmp_path_factory.mktemp("api-openapi"), worker=False) as started:
        yield started


def _operations(stack: Stack) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{stack.server.url}/openapi.json", timeout=10)
    operations = []
    for result in loaded.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"schemathesis cannot read an operation: {result.err()}")
        operations.append(result.ok())
    return operations


# Examples per operation and mode: a bound on the run (about a second per operation here).
_EXAMPLES = 10


@pytest.mark.timeout(300)
def test_no_generated_request_gets_a_5xx_or_a_reply_off_its_schema(stack: Stack) -> None:
    """Schemathesis's cases, valid and not, for every operation the document lists."""
    headers = {"Authorization": f"Bearer {stack.tokens['admin']}"}
    operations = _operations(stack)
    assert len(operations) >= 5
    tried: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(
                    base_url=stack.server.url, headers=headers, checks=_CHECKS, timeout=15
                )

            try:
                run()
            except Unsatisfiable:
                # An operation with no parameters and no body has no invalid request to make.
                assert mode is GenerationMode.NEGATIVE, operation.path
                continue
            tried.append(f"{operation.method.upper()} {operation.path} {mode.value}")
    assert len(tried) > len(operations)


def test_the_document_is_openapi_3_1_with_a_route_per_task(stack: Stack) -> None:
    with stack.client("") as anonymous:
        document = anonymous.get("/openapi.json").json()
        page = anonymous.get("/docs/plain")
        swagger = anonymous.get("/docs")
    assert document["openapi"].startswith("3.1")
    assert f"/v1/tasks/{task('add')}" in document["paths"]
    assert "/v1/tasks/{name}" not in document["paths"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert html.escape(task("add")) in page.text
    assert "<script" not in page.text
    assert swagger.status_code == 200
    assert "SwaggerUIBundle" in swagger.text
    assert 'href="/docs/plain"' in swagger.text  # for a browser that cannot reach the CDN
