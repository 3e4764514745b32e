"""Runs the demo: a server, a worker, a producer, a live view and a summary of every lesson."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.live import Live
from rich.table import Table

from errands.app import App
from errands.errors import ArgumentError, JobFailed
from errands.result import AsyncResult
from errands.workflow import chord

__all__ = ["run_demo"]


@dataclass
class _Lesson:
    name: str
    shown: str
    held: bool


def _clear(url: str, namespace: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def _start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "errands", "worker", "errands.demo.tasks:app"]
    command += ["-Q", "demo", "-c", "2", "--lease", "10", "--grace-period", "5", "--beat"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
        )


def _view(counts: dict[str, int], total: int, elapsed: float) -> Table:
    table = Table(title=f"errands demo: {elapsed:4.1f}s", show_header=True)
    for column in ("queued", "active", "retrying", "succeeded", "dead", "of"):
        table.add_column(column, justify="right")
    table.add_row(
        str(counts["ready"]),
        str(counts["active"]),
        str(counts["delayed"]),
        str(counts["succeeded"]),
        str(counts["dead"]),
        str(total),
    )
    return table


def _error(handle: AsyncResult[Any]) -> str:
    try:
        handle.get(timeout=0.1)
    except JobFailed as failure:
        return failure.error_type.rsplit(".", 1)[-1]
    return ""


def _heartbeat_lesson(app: App) -> _Lesson:
    """The schedule the worker's scheduler fired: each second once, at its nominal time."""
    state = app.schedules.get("demo-heartbeat").state
    fired = state.fired if state is not None else 0
    last = state.last_job if state is not None else None
    nominal = AsyncResult(app, last, "demo").get(timeout=5) if last else None
    on_time = nominal is not None and float(nominal).is_integer()
    return _Lesson(
        "periodic tasks, never doubled",
        f"fired {fired} times, one job per second (id {last})",
        fired >= 2 and on_time,
    )


def run_demo(console: Console) -> int:  # noqa: PLR0915 - a script: one step after the other
    """Run the demo end to end; return the exit code (0 when every lesson held)."""
    from errands.embedded import EmbeddedServer  # noqa: PLC0415

    server = None
    url = os.environ.get("ERRANDS_BROKER_URL")
    work_dir = Path(tempfile.mkdtemp(prefix="errands-demo-"))
    if not url:
        console.print("[dim]no ERRANDS_BROKER_URL: starting an embedded Valkey[/]")
        server = EmbeddedServer(work_dir).start()
        url = server.url
        os.environ["ERRANDS_BROKER_URL"] = url
    from errands.demo import tasks  # noqa: PLC0415 - reads ERRANDS_BROKER_URL when imported

    app = tasks.app
    _clear(url, app.namespace)
    worker = None
    try:
        console.print(f"broker: {url}   worker log: {work_dir / 'worker.log'}")
        lessons: list[_Lesson] = []

        # Before the worker starts: bulk work queued first, an urgent alert last.
        thumbnails = app.enqueue_many(tasks.make_thumbnail.s(i) for i in range(20))
        alert = tasks.page_on_call.delay("disk full on db-1")
        try:
            tasks.send_welcome.delay(dt.datetime.now(dt.UTC))  # type: ignore[arg-type]  # errands: ignore[ERR201]
            refused = "accepted (wrong!)"
        except ArgumentError as error:
            refused = str(error)
        lessons.append(_Lesson("simple objects only", refused, refused.startswith("args[0]")))
        first = tasks.send_welcome.apply_async((42,), idempotency_key="welcome:42")
        again = tasks.send_welcome.apply_async((42,), idempotency_key="welcome:42")
        lessons.append(
            _Lesson(
                "idempotency keys", f"second request returned job {again.id[:8]}", again == first
            )
        )
        payment = tasks.capture_payment.delay(1001)
        export = tasks.export_everything.delay(10**6)
        report = tasks.build_report.delay(50)
        invoice = tasks.import_invoice.delay("INV-7")
        rates = [tasks.fetch_rates.delay(c) for c in ("EUR", "USD", "JPY", "GBP", "CHF") * 4]
        pages = ["a b c", "d e", "f g h i"]
        words = chord([tasks.count_words.s(p) for p in pages], tasks.total_words.partial()).delay()
        calls = [tasks.call_partner.delay(n) for n in range(20)]
        handles = [*thumbnails, alert, first, payment, export, report, invoice, *rates, *calls]
        handles += [*words.members.results, words.callback]
        total = len(handles)

        worker = _start_worker(work_dir / "worker.log")
        started = time.monotonic()
        with Live(console=console, refresh_per_second=8) as live:
            while time.monotonic() - started < 60:
                info = app.inspector.queue("demo")
                counts = {
                    "ready": info.ready,
                    "active": info.active,
                    "delayed": info.delayed,
                    "succeeded": info.stats.get("succeeded", 0),
                    "dead": info.dead,
                }
                live.update(_view(counts, total, time.monotonic() - started))
                if counts["succeeded"] + counts["dead"] >= total:
                    break
                if worker.poll() is not None:
                    console.print("[red]the worker exited early; see its log[/]")
                    return 1
                time.sleep(0.125)

        alert_start = alert.get(timeout=5)
        later = sum(1 for t in thumbnails if t.get(timeout=5) > alert_start)
        lessons.append(
            _Lesson("strict priorities", f"alert ran before {later} of 20 thumbnails", later >= 15)
        )
        paid = payment.get(timeout=5)
        lessons.append(_Lesson("retries with backoff + jitter", paid, "attempt 3" in paid))
        killed = _error(export)
        lessons.append(
            _Lesson(
                "hard time limit",
                f"export killed ({killed}); worker carried on",
                killed == "TimeLimitExceeded" and worker.poll() is None,
            )
        )
        partial = report.get(timeout=5)
        lessons.append(_Lesson("soft time limit", partial, partial.startswith("partial")))
        fetched = sum(1 for r in rates if r.get(timeout=5).endswith("fetched"))
        lessons.append(_Lesson("async tasks", f"{fetched} of 20 rate fetches done", fetched == 20))
        counted = words.get(timeout=5)
        lessons.append(
            _Lesson(
                "no waiting inside a task",
                f"a chord of 3 pages counted {counted} words",
                counted == 9,
            )
        )
        starts = sorted(c.get(timeout=5)[0] for c in calls)
        unspent = all(c.get(timeout=5)[1] == 1 for c in calls)
        busiest = max(sum(1 for t in starts if s <= t < s + 1) for s in starts)
        lessons.append(
            _Lesson(
                "rate limit for every worker",
                f"20 partner calls at 10/s: at most {busiest} in any second, no attempt spent",
                busiest <= 12 and unspent,  # 10 + 1.5 let out a second, + a start's jitter
            )
        )
        lessons.append(_heartbeat_lesson(app))
        dead = {job.id for job in app.inspector.dead("demo", limit=100).items}
        lessons.append(
            _Lesson(
                "dead-letter set",
                f"{len(dead)} jobs dead: {_error(invoice)}, {killed}",
                {invoice.id, export.id} <= dead,
            )
        )

        summary = Table("lesson", "what happened", "", title="errands demo: summary")
        for lesson in lessons:
            mark = "[green]held[/]" if lesson.held else "[red]FAILED[/]"
            summary.add_row(lesson.name, lesson.shown, mark)
        console.print(summary)
        return 0 if all(lesson.held for lesson in lessons) else 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
        app.close()
        _clear(url, app.namespace)
        if server is not None:
            server.stop()
