"""The line a worker logs when it starts serving: what it runs, where, and how.

`banner` builds the text (a pure function of a `BannerFacts`); `log_banner` gathers the facts
of a supervisor and logs them, once its pool is ready. The first line says ``serving``: process
managers and the tests wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from errands.broker.urls import redact
from errands.worker.queues import QueueSelection

if TYPE_CHECKING:
    from errands.worker.supervisor import Supervisor

__all__ = ["BannerFacts", "banner", "log_banner"]

log = logging.getLogger("errands.worker")


@dataclass(frozen=True, slots=True)
class BannerFacts:
    """What the banner shows.

    Attributes:
        version: the errands version.
        worker_id: the worker's id (host:pid:suffix).
        broker_url: the broker URL (its password is hidden by `banner`).
        namespace: the key namespace.
        queues: the queues served, strict or weighted.
        pool: ``process``, ``solo`` or ``async``.
        concurrency: children (process pool) or jobs at once.
        prefetch: sync jobs queued per child beyond the running one (None: adaptive).
        lease_s: the lease of a job, seconds.
        tasks: the names of the registered tasks.
        log_jobs: which job outcomes are logged (``all``, ``failures`` or ``none``).
    """

    version: str
    worker_id: str
    broker_url: str
    namespace: str
    queues: QueueSelection
    pool: str
    concurrency: int
    prefetch: int | None
    lease_s: float
    tasks: Sequence[str]
    log_jobs: str = "all"


def _queues(queues: QueueSelection) -> str:
    if queues.weights is None:
        order = " (strict order)" if len(queues.names) > 1 else ""
        return ", ".join(queues.names) + order
    weighted = (
        f"{name}:{weight}" for name, weight in zip(queues.names, queues.weights, strict=True)
    )
    return ", ".join(weighted) + " (weighted)"


def banner(facts: BannerFacts) -> str:
    """The banner's text: a ``serving`` line, then one line per fact, indented."""
    pool = facts.pool
    concurrency = 1 if pool == "solo" else facts.concurrency
    prefetch = "adaptive" if facts.prefetch is None else str(facts.prefetch)
    if pool != "process":
        prefetch = "none (in-process pool)"
    names = sorted(facts.tasks)
    lines = [
        f"worker {facts.worker_id} serving {','.join(facts.queues.names)} with {pool} pool of "
        f"{concurrency} (errands {facts.version})",
        f"  broker:    {redact(facts.broker_url)} namespace {facts.namespace}",
        f"  queues:    {_queues(facts.queues)}",
        f"  pool:      {pool}, concurrency {concurrency}, prefetch {prefetch}",
        f"  lease:     {facts.lease_s:g}s, renewed every {facts.lease_s / 3:.3g}s",
        f"  job lines: {facts.log_jobs}",
        f"  tasks ({len(names)}): {', '.join(names) if names else '(none registered)'}",
    ]
    return "\n".join(lines)


def log_banner(supervisor: Supervisor) -> None:
    """Log the banner of `supervisor`, whose pool is ready."""
    from errands import __version__  # noqa: PLC0415 - the package imports the worker lazily

    app, config = supervisor.app, supervisor.config
    facts = BannerFacts(
        version=__version__,
        worker_id=supervisor.worker_id,
        broker_url=str(getattr(supervisor.broker, "url", app.broker_url)),
        namespace=app.namespace,
        queues=config.queues,
        pool=config.pool,
        concurrency=config.concurrency,
        prefetch=config.prefetch,
        lease_s=config.lease_s,
        tasks=list(app.tasks),
        log_jobs=config.log_jobs,
    )
    log.info("%s", banner(facts))
