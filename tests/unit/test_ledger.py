"""The ledger of what a worker holds: lost leases, and jobs that come back to the same worker."""

from __future__ import annotations

from errands.broker.types import Lease, Outcome
from errands.worker.ledger import Ledger
from errands.worker.protocol import Finished

OK = b'{"state": "succeeded"}'


def test_a_heartbeat_loses_only_the_lease_it_renewed() -> None:
    ledger = Ledger()
    ledger.hold("q", "a", "1")
    ledger.hold("q", "b", "1")
    renewed = [Lease("a", "1"), Lease("b", "1")]
    ledger.hold("q", "b", "2")  # fetched again while the heartbeat was on its way
    ledger.lose(renewed, ["a", "b"])
    assert "a" not in ledger.held
    assert ledger.lost["a"].token == "1"
    assert ledger.held["b"].token == "2"


def test_the_outcome_of_a_lost_lease_is_still_acked_with_its_token() -> None:
    ledger = Ledger()
    ledger.hold("q", "a", "1")
    ledger.lose([Lease("a", "1")], ["a"])
    ledger.finished([Finished("a", "succeeded", OK)])
    assert ledger.acks == {"q": [Outcome("a", "1", "succeeded", OK)]}
    assert ledger.lost == {}


def test_a_job_that_comes_back_while_it_still_runs_here_is_not_run_again() -> None:
    ledger = Ledger()
    ledger.hold("q", "a", "1")
    ledger.lose([Lease("a", "1")], ["a"])
    assert ledger.reclaim("q", "a", "2")
    ledger.finished([Finished("a", "succeeded", OK)])
    assert ledger.acks == {"q": [Outcome("a", "2", "succeeded", OK)]}  # settles the new lease


def test_a_job_that_comes_back_after_it_finished_here_is_settled_by_its_outcome() -> None:
    ledger = Ledger()
    ledger.hold("q", "a", "1")
    ledger.finished([Finished("a", "succeeded", OK)])  # its ack is not sent yet
    assert ledger.reclaim("q", "a", "2")
    assert ledger.acks == {"q": [Outcome("a", "2", "succeeded", OK)]}


def test_a_job_whose_ack_was_refused_as_stale_is_settled_when_it_comes_back() -> None:
    ledger = Ledger()
    ledger.refused(Outcome("a", "1", "succeeded", OK))
    assert ledger.reclaim("q", "a", "2")
    assert ledger.acks == {"q": [Outcome("a", "2", "succeeded", OK)]}
    assert ledger.stale == {}


def test_a_job_new_to_this_worker_is_not_reclaimed() -> None:
    ledger = Ledger()
    ledger.hold("q", "b", "1")
    assert not ledger.reclaim("q", "a", "2")
    assert "a" not in ledger.held
