"""Prometheus metrics of a worker (``errands worker --metrics-port``) and of producers.

Where each figure comes from, and why:

- **The worker's job counters and histograms** are counted by the supervisor, from what it
  already learns of every job: it hands each job to its pool (started), each run's outcome comes
  back over the pipe with the run time and wait time the child measured (succeeded, failed), and
  each ack's answer from Redis says retried or dead. The children's figures are therefore
  aggregated by construction, with no multiprocess files to share, clean up or merge when a
  child is killed and replaced; and what the supervisor settles itself (a child killed at its
  hard limit, a child that died) reaches the same counters, because those outcomes go through
  the same path. prometheus_client's multiprocess mode would need a directory of mmapped files
  per child pid, rewritten per job in every child, and would still miss those outcomes.
- **Counting costs a few plain integer additions per job** on the supervisor's one thread: the
  labelled series of a (task, queue) is found once per job by its id and kept until the job is
  settled; values are read only when ``/metrics`` is scraped (`WorkerMetrics.collect`, from the
  HTTP server's thread). prometheus_client's own values take a lock per increment, ten times the
  cost of an addition; the exposition (families, text format, HTTP) is the library's.
- **Enqueued jobs** are counted where they are sent: a producer adds the `Metrics` middleware to
  its app and serves prometheus_client's default registry as it serves its other metrics; a
  worker whose app has it counts the chain steps it enqueues, and serves them on its own
  ``/metrics``.
- **Queue gauges** (ready, delayed, active, dead, oldest ready age) belong to the fleet, not to a
  worker: ``errands exporter`` reads them from Redis (`errands.observe.exporter`).

Every metric, its type, labels and meaning: docs/operations.md, "Metrics".
"""

from __future__ import annotations

import contextlib
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from errands.broker.types import AckCode, Outcome
from errands.middleware import Middleware, Outgoing
from errands.observe.recorder import Recorder
from errands.observe.serving import serving

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from errands.worker.pool import Assigned
    from errands.worker.protocol import Finished
    from errands.worker.supervisor import Supervisor

__all__ = [
    "RUN_BUCKETS_S",
    "WAIT_BUCKETS_S",
    "Metrics",
    "WorkerMetrics",
    "serve_worker_metrics",
]

#: Upper bounds (seconds) of the run time histogram's buckets: from a millisecond job to an hour.
RUN_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
#: Upper bounds (seconds) of the wait time histogram's buckets: up to a day behind.
WAIT_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
)  # fmt: skip

_LABELS = ("task", "queue")


class _Series:
    """The figures of one (task, queue): plain integers, summed up at scrape time."""

    __slots__ = (
        "dead",
        "failed",
        "labels",
        "released",
        "retried",
        "run",
        "run_sum",
        "started",
        "succeeded",
        "wait",
        "wait_sum",
    )

    def __init__(self, task: str, queue: str) -> None:
        self.labels = [task, queue]
        self.started = self.succeeded = self.failed = self.retried = self.dead = 0
        self.released = 0
        self.run = [0] * (len(RUN_BUCKETS_S) + 1)  # per bucket, not cumulative; last: +Inf
        self.wait = [0] * (len(WAIT_BUCKETS_S) + 1)
        self.run_sum = self.wait_sum = 0.0


class WorkerMetrics(Recorder, Collector):
    """Counts a worker's jobs, and is the prometheus_client collector that shows them.

    Args:
        worker_id: the worker's id, the label of its gauges.
        in_flight: how many jobs the worker holds now (leased: running or queued in a child).
        renewals: how many leases the worker has renewed so far.
    """

    __slots__ = ("_by_job", "_in_flight", "_renewals", "_series", "worker_id")

    def __init__(
        self, worker_id: str, in_flight: Callable[[], int], renewals: Callable[[], int]
    ) -> None:
        self.worker_id = worker_id
        self._in_flight = in_flight
        self._renewals = renewals
        self._series: dict[tuple[str, str], _Series] = {}
        # job id -> its series, from its start until it is settled or given back.
        self._by_job: dict[str, _Series] = {}

    def _of(self, task: str, queue: str) -> _Series:
        key = (task, queue)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(task, queue)
        return series

    # Recording (the supervisor's thread) --------------------------------------------------------

    def started(self, queue: str, assigned: Sequence[Assigned]) -> None:
        """Count the jobs handed to the pool, and remember each one's series until it settles."""
        by_job = self._by_job
        task, series = "", None
        for one in assigned:
            if series is None or one.task != task:  # a batch is mostly of one task
                task = one.task
                series = self._of(task, queue)
            series.started += 1
            by_job[one.job.id] = series

    def finished(self, results: Sequence[Finished]) -> None:
        """Count each run's outcome and observe its run and wait time."""
        by_job = self._by_job
        for result in results:
            series = by_job.get(result.id)
            if series is None:
                continue  # given back already (the supervisor ignores its outcome too)
            kind = result.kind
            if kind == "succeeded":
                series.succeeded += 1
                del by_job[result.id]
            elif kind in ("retrying", "failed"):
                series.failed += 1  # kept for its ack: retried or dead
                if result.acked:
                    del by_job[result.id]  # its child acked it: a death came as `died`
            else:
                del by_job[result.id]  # deferred or limited: it runs again, uncounted here
            if result.run_s >= 0.0:
                series.run[bisect_left(RUN_BUCKETS_S, result.run_s)] += 1
                series.run_sum += result.run_s
            if result.wait_s >= 0.0:
                series.wait[bisect_left(WAIT_BUCKETS_S, result.wait_s)] += 1
                series.wait_sum += result.wait_s

    def acked(self, acks: Sequence[Outcome], codes: Sequence[AckCode]) -> None:
        """Count the failed runs Redis scheduled again; forget every settled job."""
        by_job = self._by_job
        for outcome, code in zip(acks, codes, strict=True):
            series = by_job.pop(outcome.id, None)
            if series is not None and code is AckCode.RETRYING and outcome.kind == "retrying":
                series.retried += 1

    def died(self, queue: str, died: Sequence[tuple[str, bytes]]) -> None:
        """Count deaths; a job this worker never ran (a stalled one it reaped) has no task."""
        by_job = self._by_job
        for job_id, _outcome in died:
            series = by_job.get(job_id)
            if series is None:
                series = self._of("", queue)
            series.dead += 1

    def gave_back(self, job_ids: Sequence[str]) -> None:
        """Count the jobs given back without an outcome; they start again, here or elsewhere."""
        by_job = self._by_job
        for job_id in job_ids:
            series = by_job.pop(job_id, None)
            if series is not None:
                series.released += 1

    # Reading (the HTTP server's thread) ---------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The metrics as they stand, for prometheus_client's exposition."""
        counters = {
            name: CounterMetricFamily(f"errands_jobs_{name}", text, labels=_LABELS)
            for name, text in (
                ("started", "Jobs handed to this worker's pool to run."),
                ("succeeded", "Runs that succeeded."),
                ("failed", "Runs that failed (raised, timed out, lost their process)."),
                ("retried", "Failed runs that Redis scheduled to run again."),
                ("dead", "Jobs this worker sent to the dead set."),
                ("released", "Jobs handed to the pool and given back without an outcome."),
            )
        }
        run = HistogramMetricFamily(
            "errands_job_run_seconds", "How long runs took, in seconds.", labels=_LABELS
        )
        wait = HistogramMetricFamily(
            "errands_job_wait_seconds",
            "Seconds from enqueue to the start of a job's first run.",
            labels=_LABELS,
        )
        for series in list(self._series.values()):  # a copy: the loop's thread may add one
            labels = series.labels
            for name, family in counters.items():
                family.add_metric(labels, getattr(series, name))
            run.add_metric(labels, _cumulative(RUN_BUCKETS_S, series.run), series.run_sum)
            wait.add_metric(labels, _cumulative(WAIT_BUCKETS_S, series.wait), series.wait_sum)
        yield from counters.values()
        yield run
        yield wait
        in_flight = GaugeMetricFamily(
            "errands_worker_jobs_in_flight",
            "Jobs this worker holds: running, or queued in its children.",
            labels=["worker"],
        )
        in_flight.add_metric([self.worker_id], self._in_flight())
        yield in_flight
        yield CounterMetricFamily(
            "errands_lease_renewals", "Job leases this worker renewed.", value=self._renewals()
        )


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus's cumulative ``le`` buckets, +Inf last."""
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*bounds, float("inf")), list(counts), strict=True):
        total += count
        buckets.append((_le(bound), total))
    return buckets


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class _Default(Collector):
    """prometheus_client's default registry (process metrics, `Metrics`), inside another."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


@contextlib.contextmanager
def serve_worker_metrics(
    supervisor: Supervisor,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - Prometheus scrapes from elsewhere
) -> Iterator[None]:
    """Count `supervisor`'s jobs and serve them on ``http://host:port/metrics`` meanwhile.

    The server runs on a thread of this process (the supervisor's), beside the default
    registry's metrics. Raises `ConfigurationError` when the port cannot be bound.
    """
    recorder = WorkerMetrics(
        supervisor.worker_id,
        lambda: len(supervisor.ledger.held),
        lambda: supervisor.upkeep.renewals,
    )
    with serving([recorder, _Default()], port, host, "--metrics-port"):
        supervisor.metrics = recorder
        try:
            yield
        finally:
            supervisor.metrics = Recorder()


# Producers -------------------------------------------------------------------------------------

_enqueued: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def _enqueued_counter(registry: CollectorRegistry) -> Counter:
    """The registry's one counter of enqueued jobs (two apps in a process share it)."""
    found = _enqueued.get(registry)
    if found is None:
        found = _enqueued[registry] = Counter(
            "errands_jobs_enqueued",
            "Jobs this process enqueued (duplicates of a known job not counted).",
            _LABELS,
            registry=registry,
        )
    return found


class Metrics(Middleware):
    """Counts the jobs this process enqueues, as ``errands_jobs_enqueued_total{task,queue}``.

    Add it to the app (``App(..., middleware=[Metrics()])``) and serve the registry as the
    process serves its other metrics (prometheus_client's ``start_http_server``, or its WSGI
    or ASGI app). A worker whose app has it counts the chain steps it enqueues and serves them
    on its ``--metrics-port``.

    Args:
        registry: where the counter lives (prometheus_client's default registry by default).
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._counter = _enqueued_counter(registry)
        self._children: dict[tuple[str, str], Counter] = {}

    def after_enqueue(self, job: Outgoing, created: bool) -> None:
        """Count a job the broker took (a duplicate is not a new job)."""
        if not created:
            return
        key = (job.task, job.queue)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._counter.labels(job.task, job.queue)
        child.inc()
