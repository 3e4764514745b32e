"""docs/grafana/errands.json: valid JSON, and every metric it queries is one the code defines."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from errands.broker.views import QueueSummary
from errands.middleware import Outgoing
from errands.observe.exporter import QueueExporter, Reading, queue_families
from errands.observe.metrics import Metrics, WorkerMetrics
from errands.worker.pool import Assigned
from errands.worker.protocol import Finished, Job

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "errands.json"
_METRIC = re.compile(r"\berrands_[a-z_]+\b")


def _exprs(node: Any) -> list[str]:
    """Every ``expr`` and variable ``query`` string in the dashboard."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_exprs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_exprs(item))
    return found


def _defined_sample_names() -> set[str]:
    """The sample names the worker, the middleware and the exporter expose."""
    worker = WorkerMetrics("w", lambda: 0, lambda: 0)
    worker.started("q", [Assigned(Job("a", b"", 1), "t", 1.0, is_async=False)])
    worker.finished([Finished("a", "succeeded", b"", run_s=0.1, wait_s=0.1)])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(worker)
    Metrics(registry).after_enqueue(_outgoing(), created=True)
    queue = QueueSummary("q", 1, 1, 1, 1, False, 1.0, 1, {"enqueued": 1, "limited": 1})

    class Exporter(QueueExporter):
        def read(self) -> Reading:
            return Reading([queue], {"s": 1})

    registry.register(Exporter(None))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {m.name for m in queue_families(Reading([queue], {"s": 1}))} <= {
        n.removesuffix("_total") for n in names
    }
    return names


def _outgoing() -> Outgoing:
    return Outgoing("id", "t", "q", [], {})


def test_the_dashboard_is_valid_json_with_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]


def test_the_dashboard_queries_only_metrics_the_code_defines() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {name for expr in _exprs(dashboard) for name in _METRIC.findall(expr)}
    defined = _defined_sample_names()
    assert used, "the dashboard queries no errands metric"
    assert used - defined == set()
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("throughput", "run time", "wait time", "queue depth", "oldest", "in flight"):
        assert topic in titles
    for topic in ("dead", "limiter", "missed"):
        assert topic in titles
