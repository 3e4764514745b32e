"""The inspector benchmark runs end to end at tiny sizes on a private server, and reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.inspector import main


@pytest.mark.timeout(120)
def test_the_inspector_benchmark_writes_a_row_per_read_and_size(tmp_path: Path) -> None:
    out = tmp_path / "INSPECTOR.md"
    assert main(["--sizes", "100,1500", "--repeat", "5", "--out", str(out)]) == 0
    report = out.read_text()
    assert "| read | 100 dead: p50 / p95 / Redis | 1,500 dead: p50 / p95 / Redis |" in report
    for read in ("oldest page of 50", "page filtered by a 1% task", "queue summary"):
        assert f"| {read} |" in report
    assert "The filtered page held 1 at 100, 3 at 1,500 jobs" in report
