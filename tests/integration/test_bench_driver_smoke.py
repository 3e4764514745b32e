"""The benchmark driver, end to end with tiny sizes, errands and the floor, on the test server.

It runs ``benchmarks.run.main`` the way ``make bench`` does, but against the session's server
(``--redis-url``) in the test's namespace (``--namespace``): the driver then starts no server,
never flushes, and deletes only the keys under the namespace. It keeps the driver, the producer
and the adapters that live in the project's environment (errands, and the bare redis-py floor)
from rotting between real benchmark runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import run


@pytest.mark.timeout(90)
def test_the_driver_runs_every_scenario_for_errands_and_the_floor_and_writes_the_report(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "RESULTS.md"
    code = run.main(
        [
            "--systems", "errands,floor",
            "--redis-url", redis_url,
            "--namespace", namespace,
            "--runs", "1",
            "--n", "300",
            "--latency-n", "10",
            "--cpu-n", "20",
            "--async-n", "100",
            "--memory-n", "300",
            "--backlog-sizes", "400",
            "--backlog-k", "50",
            "--out", str(out),
            "--no-setup",
            "--no-chart",
        ]
    )  # fmt: skip

    assert code == 0
    report = out.read_text()
    for title in ("1. Enqueue", "2. Processing", "3. Latency", "4. Redis commands", "5. Backlog"):
        assert f"## {title}" in report
    assert "## 6. CPU-bound" in report
    assert "## 7. Async I/O" in report
    rows = [line for line in report.splitlines() if line.startswith("| errands |")]
    assert len(rows) == 8, rows  # a row in each scenario's table, and one of versions
    assert not [row for row in rows if "failed" in row or "n/a" in row], rows
    floor = [line for line in report.splitlines() if line.startswith("| floor: bare redis-py |")]
    assert len(floor) == 8, floor
    # Only the async scenario is out of its reach (it has no event loop).
    assert [row for row in floor if "failed" in row or "n/a" in row] == [floor[6]], floor
    assert (tmp_path / "results.json").exists()


def test_the_driver_refuses_an_unknown_system() -> None:
    assert run.main(["--systems", "nope", "--no-setup"]) == 2
