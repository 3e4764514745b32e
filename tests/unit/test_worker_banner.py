"""The start-up banner says what a worker runs, where and how, and hides the password."""

from __future__ import annotations

from errands.worker.banner import BannerFacts, banner
from errands.worker.queues import QueueSelection


def _facts(**changes: object) -> BannerFacts:
    facts: dict[str, object] = {
        "version": "1.2.3",
        "worker_id": "host:42:abcdef",
        "broker_url": "redis://user:s3cret@db:6379/2",
        "namespace": "shop",
        "queues": QueueSelection(("high", "default")),
        "pool": "process",
        "concurrency": 4,
        "prefetch": None,
        "lease_s": 30.0,
        "tasks": ["mail.send", "billing.charge", "audit.write"],
        "log_jobs": "all",
    }
    facts.update(changes)
    return BannerFacts(**facts)  # type: ignore[arg-type]


def test_the_first_line_says_serving_with_the_queues_pool_and_version() -> None:
    first = banner(_facts()).splitlines()[0]
    assert (
        first == "worker host:42:abcdef serving high,default with process pool of 4 (errands 1.2.3)"
    )


def test_the_broker_url_is_shown_without_its_password_with_the_namespace() -> None:
    text = banner(_facts())
    assert "s3cret" not in text
    assert "broker:    redis://user:***@db:6379/2 namespace shop" in text


def test_every_task_is_listed_sorted_with_their_count() -> None:
    assert "tasks (3): audit.write, billing.charge, mail.send" in banner(_facts())
    assert "tasks (0): (none registered)" in banner(_facts(tasks=[]))


def test_queues_show_strict_order_or_their_weights() -> None:
    assert "queues:    high, default (strict order)" in banner(_facts())
    weighted = _facts(queues=QueueSelection(("high", "low"), (3, 1)))
    assert "queues:    high:3, low:1 (weighted)" in banner(weighted)
    assert "queues:    default\n" in banner(_facts(queues=QueueSelection(("default",))))


def test_pool_concurrency_prefetch_lease_and_job_lines() -> None:
    text = banner(_facts(prefetch=8, lease_s=12.0, log_jobs="failures"))
    assert "pool:      process, concurrency 4, prefetch 8" in text
    assert "lease:     12s, renewed every 4s" in text
    assert "job lines: failures" in text
    assert "pool:      process, concurrency 4, prefetch adaptive" in banner(_facts())


def test_a_solo_pool_runs_one_job_and_in_process_pools_have_no_prefetch() -> None:
    text = banner(_facts(pool="solo", concurrency=8))
    assert "with solo pool of 1" in text
    assert "pool:      solo, concurrency 1, prefetch none (in-process pool)" in text
