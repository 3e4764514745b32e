"""The HTTP benchmark's pieces and driver run end to end at tiny sizes, and report."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import http, pages
from benchmarks.loadgen import closed_loop, null_server, open_loop, raw_request
from benchmarks.server import free_port

_BODY = b'{"args": [1, 2]}'


@pytest.mark.timeout(60)
def test_wrk_and_the_open_loop_generator_see_every_request_of_the_null_server_answered() -> None:
    port = free_port()
    with null_server(port):
        url = f"http://127.0.0.1:{port}/v1/tasks/add"
        load = closed_loop(url, _BODY, {"Authorization": "Bearer x"}, connections=4, duration_s=1)
        request = raw_request("127.0.0.1", port, "/v1/tasks/add", _BODY, {"X-Test": "1"})
        paced = open_loop("127.0.0.1", port, request, rate=200, duration_s=1, connections=4)
    assert load.ok == load.answered > 100
    assert load.answered <= load.sent <= load.answered + 4
    assert paced.statuses == {202: 200}
    assert paced.errors == {}
    assert 0 < paced.quantiles_ms()["p50"] < 100


@pytest.mark.timeout(120)
def test_the_http_benchmark_counts_every_enqueue_it_was_answered_for(tmp_path: Path) -> None:
    out = tmp_path / "HTTP.md"
    argv = ["--duration", "1", "--connections", "4", "--rounds", "2", "--open-duration", "1"]
    assert http.main([*argv, "--top-rate", "300", "--no-flower", "--out", str(out)]) == 0
    report = out.read_text()
    assert (
        "- Every request answered 2xx, and every answer a job counted in Redis afterwards: **yes**"
        in report
    )
    assert "| errands | 4 |" in report
    assert "errands at half its maximum" in report
    assert "| null server |" in report


@pytest.mark.timeout(120)
def test_the_pages_benchmark_times_every_get_route_of_the_app(tmp_path: Path) -> None:
    out = tmp_path / "PAGES.md"
    # Its exit code says whether every read was under 300 ms: the machine's load at tiny
    # sizes, not the behaviour this test pins.
    pages.main(["--ready", "3000", "--dead", "1200", "--repeat", "2", "--out", str(out)])
    report = out.read_text()
    assert "- Filled: 3,000 jobs ready and 1,200 dead in one queue" in report
    assert "/readyz, since no worker serves the full queue): **yes**" in report
    assert "- GET routes of the app not timed: none" in report
    assert "| API | job, dead | `/v1/jobs/<id>` | 200 |" in report
