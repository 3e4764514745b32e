"""The HTTP benchmark's pieces and driver run end to end at tiny sizes, and report."""

from __future__ import annotations

import pytest
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
