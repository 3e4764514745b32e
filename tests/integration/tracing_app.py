"""An app that traces its jobs, for the test that runs it on a real worker.

A worker imports ``tests.integration.tracing_app:app``, built on first access from
``ERRANDS_BROKER_URL``, ``ERRANDS_TEST_NAMESPACE`` and ``ERRANDS_TEST_SPANS``: every process of
the worker (the supervisor, each child) appends the spans it ends to that file, one JSON object
a line, as soon as each ends. A test builds the same app with `build` and a tracer provider of
its own to send the jobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from errands import App
from errands.observe.tracing import Tracing
from tests.integration.hanging import hang_past_the_soft_limit
from tests.integration.lazy_app import lazy_app

__all__ = ["FileExporter", "build", "read_spans"]


class FileExporter(SpanExporter):
    """Appends each span to a file as one JSON line: ids, parent, links, kind, attributes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            assert span.context is not None
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": span.context.trace_id,
                        "span_id": span.context.span_id,
                        "parent_id": span.parent.span_id if span.parent else None,
                        "links": [link.context.span_id for link in span.links],
                        "attributes": dict(span.attributes or {}),
                        "pid": os.getpid(),
                    }
                )
            )
        with self.path.open("a") as out:  # one write per batch, appended whole
            out.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans written to `path` so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def build(broker_url: str, namespace: str, provider: TracerProvider) -> App:
    """The app on `broker_url` and `namespace`, tracing to `provider`."""
    app = App(broker_url, namespace=namespace, lease=2, middleware=[Tracing(provider)])

    @app.task(name="add", soft_time_limit=5, time_limit=10)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="hangs", max_retries=0, soft_time_limit=0.5, time_limit=1)
    def hangs() -> None:
        hang_past_the_soft_limit()

    return app


def _from_environment() -> App:
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(FileExporter(Path(os.environ["ERRANDS_TEST_SPANS"])))
    )
    return build(os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"], provider)


__getattr__ = lazy_app(__name__, _from_environment)
