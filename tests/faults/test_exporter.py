"""The exporter when Redis goes away: up=0 and a counted error, not a crash; then it recovers."""

from __future__ import annotations

from tests.faults.servers import RedisServer
from tests.integration.test_metrics import scrape, value
from tests.integration.workers import Workers, free_port, wait_until


def test_the_exporter_reports_up_0_while_redis_is_stopped_and_recovers(
    server: RedisServer, workers: Workers
) -> None:
    port = free_port()
    exporter = workers.spawn("--port", str(port), command="exporter")
    exporter.wait_for_log("serving")
    assert value(scrape(port), "errands_exporter_up") == 1

    server.stop()
    # A scrape within a second of the last read shows that read again: wait for a fresh one.
    wait_until(lambda: value(scrape(port), "errands_exporter_up") == 0, 10, "up=0")
    down = scrape(port)
    assert value(down, "errands_exporter_scrape_errors_total") >= 1
    assert not any(name == "errands_queue_jobs" for name, _ in down)  # no stale gauges
    assert exporter.running()
    assert "cannot read Redis" in exporter.log()

    server.start()
    wait_until(lambda: value(scrape(port), "errands_exporter_up") == 1, 15, "up again")
    assert exporter.running()
    assert "Traceback" not in exporter.log()
