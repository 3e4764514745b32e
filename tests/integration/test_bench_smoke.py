"""The fetch-backlog benchmark runs end to end (tiny sizes, on the test server) and cleans up."""

from __future__ import annotations

import re

import pytest
import redis
from benchmarks.fetch_backlog import main


def test_the_fetch_backlog_benchmark_prints_its_table_and_leaves_no_keys(
    redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--url", redis_url, "--namespace", namespace, "--sizes", "200,400", "--samples", "20"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fetch latency against backlog size (20 calls each, milliseconds)" in out
    for size in ("200", "400"):
        assert re.search(
            rf"^ +{size} +[\d.]+ +\d+ \| +[\d.]+ +[\d.]+ \| +[\d.]+ +[\d.]+$", out, re.M
        )
    assert re.search(r"^p50\(400\) / p50\(200\): fetch1\+ack [\d.]+, fetch100 [\d.]+$", out, re.M)
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{namespace}:*")) == []
    finally:
        client.close()


def test_the_benchmark_refuses_sizes_too_small_for_a_fetch_of_100(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--sizes", "50", "--url", "redis://127.0.0.1:1/0"])
    assert "every size must be at least 100" in capsys.readouterr().err
