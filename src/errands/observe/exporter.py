"""The fleet's gauges from Redis (``errands exporter APP --port PORT``): one process per fleet.

A worker knows its own jobs (`errands.observe.metrics`); how many jobs wait, how old the oldest
is, how many are dead, belong to the queues, whoever serves them. The exporter reads them through
the app's inspector when Prometheus scrapes it, at most once per `min_interval_s` (two scrapers do
not double the load), in pages: a scrape costs one bounded call per 100 queues, up to
`max_queues`, plus one read of the schedules. When Redis does not answer, ``errands_exporter_up``
says 0 and the error is counted; the next scrape tries again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from errands.errors import ErrandsError
from errands.observe.serving import serving

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from errands.app import App
    from errands.broker.views import QueueSummary

__all__ = ["QueueExporter", "Reading", "queue_families", "run_exporter"]

log = logging.getLogger("errands.exporter")

_PAGE = 100


@dataclass(frozen=True, slots=True)
class Reading:
    """What one read of Redis found: the queues, and each schedule's missed fires."""

    queues: list[QueueSummary]
    missed_fires: dict[str, int] = field(default_factory=dict)


def queue_families(reading: Reading) -> list[Metric]:
    """The metric families of a reading (pure: the tests feed it readings of their own)."""
    jobs = GaugeMetricFamily(
        "errands_queue_jobs", "Jobs in the queue, by state.", labels=["queue", "state"]
    )
    oldest = GaugeMetricFamily(
        "errands_queue_oldest_ready_age_seconds",
        "Seconds since the oldest ready job was enqueued (0: none ready).",
        labels=["queue"],
    )
    paused = GaugeMetricFamily("errands_queue_paused", "1 when paused.", labels=["queue"])
    consumers = GaugeMetricFamily(
        "errands_queue_consumers", "Workers heard from lately that serve it.", labels=["queue"]
    )
    events = CounterMetricFamily(
        "errands_queue_events",
        "Redis's own counters of the queue since its first use, by event.",
        labels=["queue", "event"],
    )
    denials = CounterMetricFamily(
        "errands_limiter_denials",
        "Jobs a limiter held back when a worker fetched them (they wait, no attempt spent).",
        labels=["queue"],
    )
    for queue in reading.queues:
        name = [queue.name]
        for state, count in (
            ("ready", queue.ready),
            ("delayed", queue.delayed),
            ("active", queue.active),
            ("dead", queue.dead),
        ):
            jobs.add_metric([queue.name, state], count)
        oldest.add_metric(name, queue.oldest_ready_age_s or 0.0)
        paused.add_metric(name, 1.0 if queue.paused else 0.0)
        consumers.add_metric(name, queue.consumers)
        for event, count in sorted(queue.stats.items()):
            events.add_metric([queue.name, event], count)
        denials.add_metric(name, queue.stats.get("limited", 0))
    missed = CounterMetricFamily(
        "errands_schedule_missed_fires",
        "Fires of the schedule older than its catch-up window when a scheduler got to them.",
        labels=["schedule"],
    )
    for schedule, count in sorted(reading.missed_fires.items()):
        missed.add_metric([schedule], count)
    return [jobs, oldest, paused, consumers, events, denials, missed]


class QueueExporter(Collector):
    """The prometheus_client collector of the exporter: reads Redis when scraped.

    Args:
        app: the app whose broker and namespace are read (and whose code schedules count).
        max_queues: the most queues read per scrape (by name); the rest are left out, logged.
        min_interval_s: a scrape sooner than this after the last read shows that read again.
    """

    def __init__(self, app: App, *, max_queues: int = 1000, min_interval_s: float = 1.0) -> None:
        self.app = app
        self.max_queues = max_queues
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()  # one read at a time, whatever scrapes at once
        self._last: tuple[float, list[Metric]] | None = None
        self._errors = 0
        self._up = 0.0
        self._duration_s = 0.0
        self._warned_truncated = False

    def read(self) -> Reading:
        """Read the queues (paged, bounded) and the schedules' missed fires from Redis."""
        found: list[QueueSummary] = []
        after: str | None = None
        while len(found) < self.max_queues:
            page = self.app.inspector.queues(
                after=after, limit=min(_PAGE, self.max_queues - len(found))
            )
            found.extend(page.items)
            if page.cursor is None:
                break
            after = page.cursor
        else:
            if not self._warned_truncated:
                self._warned_truncated = True
                log.warning(
                    "more than %d queues: the exporter shows the first %d by name (raise "
                    "--max-queues to see them all)",
                    self.max_queues,
                    self.max_queues,
                )
        missed = {
            info.definition.id: info.state.missed
            for info in self.app.schedules.list()
            if info.state is not None
        }
        return Reading(found, missed)

    def collect(self) -> Iterator[Metric]:
        """The metrics of the latest read (a fresh one unless the last is recent enough)."""
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.min_interval_s:
                self._last = (now, self._refresh())
            families = self._last[1]
        yield from families
        yield GaugeMetricFamily(
            "errands_exporter_up", "1 when the last read of Redis succeeded, else 0.", self._up
        )
        yield CounterMetricFamily(
            "errands_exporter_scrape_errors", "Reads of Redis that failed.", value=self._errors
        )
        yield GaugeMetricFamily(
            "errands_exporter_scrape_duration_seconds",
            "How long the last read of Redis took.",
            self._duration_s,
        )

    def _refresh(self) -> list[Metric]:
        began = time.perf_counter()
        try:
            families = queue_families(self.read())
        except Exception as error:  # a failed read is a metric, never a crash
            self._errors += 1
            if self._up or self._errors == 1:
                if isinstance(error, ErrandsError):
                    log.warning("cannot read Redis: %s (errands_exporter_up is 0)", error)
                else:
                    log.exception("cannot read Redis (errands_exporter_up is 0)")
            self._up = 0.0
            families = []
        else:
            if not self._up:
                log.info("reading Redis again (errands_exporter_up is 1)")
            self._up = 1.0
        self._duration_s = time.perf_counter() - began
        return families


def run_exporter(
    app: App,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - Prometheus scrapes from elsewhere
    *,
    max_queues: int = 1000,
    stop: threading.Event | None = None,
) -> None:
    """Serve `app`'s queue metrics on ``http://host:port/metrics`` until SIGTERM or SIGINT.

    `stop`, when given, ends it too (for callers that run it on a thread of their own).
    """
    stopped = stop or threading.Event()
    with serving([QueueExporter(app, max_queues=max_queues)], port, host, "--port"):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda _signum, _frame: stopped.set())
        log.info(
            "exporter serving the queues of namespace %r on http://%s:%d/metrics",
            app.namespace,
            host,
            port,
        )
        stopped.wait()
    log.info("exporter stopped")
