"""Settling a worker's jobs as it exits: ack what finished, give back what did not start.

A worker that stops (SIGTERM, a failure) has outcomes and releases in its ledger; they are sent
in a few more exchanges, each retried while Redis does not answer, but only a few times: a
worker whose Redis is gone must still exit, and the leases of what it could not settle expire,
so those jobs run again elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from errands.errors import BrokerError
from errands.worker.ledger import Ledger
from errands.worker.outage import Outage, keep_trying

__all__ = ["EXIT_TRIES", "settle_at_exit"]

log = logging.getLogger("errands.worker")

#: Exchanges (and failed calls) after which a worker that is exiting stops trying to settle.
EXIT_TRIES = 3


async def settle_at_exit(
    ledger: Ledger,
    exchange: Callable[[], Awaitable[int]],
    outage: Outage,
    call_timeout_s: float,
) -> bool:
    """Exchange until `ledger` is settled, a bounded number of times; False if it is not.

    Args:
        ledger: what the worker still owes Redis (acks, releases).
        exchange: one exchange with Redis (acks pipelined with fetches that take nothing).
        outage: the worker's outage log, which collapses repeated failures.
        call_timeout_s: the longest one exchange may take.
    """
    tries = 0

    def out_of_tries() -> bool:
        nonlocal tries
        tries += 1
        return tries >= EXIT_TRIES

    async def exchange_all() -> None:
        # One exchange settles everything when nothing more comes in; a few more for a
        # straggler (an outcome that came in meanwhile).
        for _ in range(EXIT_TRIES):
            if ledger.settled():
                return
            await exchange()

    why = "Redis did not answer"
    try:
        settled = await keep_trying(
            exchange_all, "settling jobs at exit", outage, call_timeout_s, out_of_tries
        )
    except BrokerError as error:  # not passing: the worker may be stopping because of it
        settled, why = False, str(error)
    if not settled:
        owed = sum(map(len, ledger.acks.values())) + sum(map(len, ledger.releases.values()))
        log.warning(
            "could not settle %d job(s) at exit (%s): their leases will expire and they run "
            "again elsewhere",
            owed,
            why,
        )
    return settled
