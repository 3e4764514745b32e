"""A worker whose Redis goes away says so in a few lines, not one per failed call.

Every loop of the supervisor (exchange, heartbeat, maintenance, chords) and every child waiting
on Redis meets the outage, many times a second. The log must show it once when it starts, then
one line every 5 s saying how many failed calls it stands for, then once when Redis is back.
The outage lasts 12 s: the time passing is the fault.
"""

from __future__ import annotations

import re
import time

import pytest
from tests.faults.fault_app import FaultTasks
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers

OUTAGE_S = 12.0


@pytest.mark.timeout(90)
def test_an_outage_of_12_s_is_a_handful_of_collapsed_lines(
    server: RedisServer, tasks: FaultTasks, workers: Workers
) -> None:
    worker = workers.start("-c", "2", "--lease", "3", env={"ERRANDS_TEST_LEASE": "3"})
    assert tasks.add.delay(1, 2).get(timeout=15) == 3
    before = len(worker.log().splitlines())
    server.stop()
    time.sleep(OUTAGE_S)
    during = worker.log().splitlines()[before:]
    server.start()  # on the same port
    worker.wait_for_log("answers again", timeout_s=30)
    warnings = [line for line in during if " WARNING " in line]
    # One line when it starts, one per child that was waiting on Redis, then one every 5 s.
    assert len(warnings) <= 1 + 2 + int(OUTAGE_S / 5) + 1, "\n".join(warnings)
    collapsed = [line for line in warnings if "still failing" in line]
    assert 1 <= len(collapsed) <= 3, "\n".join(warnings)
    counts = [re.search(r"\((\d+) more like this in the last 5 s\)$", line) for line in collapsed]
    assert all(counts), "\n".join(collapsed)
    assert sum(int(found[1]) for found in counts if found) >= 5, "it stands for many failed calls"
    assert tasks.add.delay(2, 3).get(timeout=15) == 5  # and it works again
