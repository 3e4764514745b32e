"""The probes over HTTP: /healthz answers while the process runs; /readyz wants live consumers."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.web_api_support import APP_SPEC, api_stack, task_path
from tests.integration.workers import Workers, wait_until


def test_readyz_is_503_while_a_queue_has_work_and_no_consumer_then_200(
    redis_url: str, tmp_path: Path
) -> None:
    with api_stack(redis_url, tmp_path, worker=False) as stack, stack.client("") as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        empty = anonymous.get("/readyz")
        assert empty.status_code == 200, empty.text
        assert empty.json()["status"] == "ready"
        with stack.client("enqueue") as producer:
            assert producer.post(task_path("add"), json={"args": [1, 2]}).status_code == 202
        waiting = anonymous.get("/readyz")
        assert waiting.status_code == 503
        assert waiting.json()["status"] == "unready"
        assert waiting.json()["reasons"] == ["queue default has 1 ready job(s) and no live worker"]
        farm = Workers(redis_url, stack.app.namespace, tmp_path, app_spec=APP_SPEC)
        try:
            farm.start("--concurrency", "1")

            def ready() -> bool:
                return anonymous.get("/readyz").status_code == 200

            wait_until(ready, 20, "/readyz to say ready once a worker runs")
        finally:
            farm.close()
