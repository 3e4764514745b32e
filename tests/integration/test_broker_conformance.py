"""errands' two brokers pass the conformance suite, run through `errands.testing.check_broker`.

One test per check and broker, so a failure names its check: RedisBroker on real Redis (the
test's private namespace, deleted after) and MemoryBroker on a clock the checks move.
"""

from __future__ import annotations

import pytest

from errands.broker.redis import RedisBroker
from errands.conformance import CHECKS
from errands.testing import ManualClock, MemoryBroker, check_broker


@pytest.mark.parametrize("check", list(CHECKS))
def test_the_redis_broker_passes(check: str, redis_url: str, namespace: str) -> None:
    # One check per test: the namespace the fixture deletes is fresh for its one broker.
    ran = check_broker(lambda: RedisBroker(redis_url, namespace=namespace), only=[check])
    assert ran == [check]


@pytest.mark.parametrize("check", list(CHECKS))
def test_the_memory_broker_passes(check: str) -> None:
    clock = ManualClock()
    ran = check_broker(lambda: MemoryBroker(clock=clock), clock=clock, only=[check])
    assert ran == [check]
