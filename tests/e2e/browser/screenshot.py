"""Take the overview's screenshot for the docs: ``python -m tests.e2e.browser.screenshot``.

It runs everything of its own and stops it at the end: a redis-server on a free port (in a
temporary folder), two workers of `tests.e2e.browser.dash_app` (one with the scheduler), an
``errands api``; it gives four queues an hour of history (jobs run, the series sampled once per
simulated minute), leaves some jobs waiting and running, then opens the overview in headless
Chromium and writes ``docs/images/dashboard-overview.png`` (or ``--out PATH``).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from errands import App
from tests.e2e.browser.chromium import chromium
from tests.e2e.browser.dash_app import SPEC, build
from tests.e2e.env_app import ROOT
from tests.e2e.web_support import api_server, make_token
from tests.faults.servers import RedisServer
from tests.integration.workers import Workers, wait_until

__all__ = ["main"]

QUEUES = ("default", "emails", "reports", "billing")
#: Simulated minutes of history.
MINUTES = 40
NAMESPACE = "errands-dashboard-screenshot"


def _drained(app: App) -> bool:
    return all(
        (q := app.inspector.queue(name)).ready + q.delayed + q.active == 0 for name in QUEUES
    )


def _history(app: App, scratch: Path) -> None:
    """Run a busy, uneven hour: per simulated minute, jobs on each queue, a few failing."""
    rng = random.Random(15)
    start = time.time() - 60 * (MINUTES + 1)
    for name in QUEUES:
        app.broker.sample_throughput(name, now=start)
    for minute in range(MINUTES):
        wave = 1.0 + 0.8 * ((minute % 17) / 17)
        for weight, name in zip((6, 9, 3, 2), QUEUES, strict=True):
            for _ in range(int(rng.uniform(0.5, 1.5) * weight * wave)):
                app.send_task("resize", [0.0], queue=name)
            if rng.random() < 0.25 * weight / 6:
                app.send_task("charge", [str(scratch / "never")], queue=name)
        wait_until(lambda: _drained(app), 30.0, "the minute's jobs run")
        for name in QUEUES:
            app.broker.sample_throughput(name, now=start + 60 * (minute + 1))


def main() -> None:
    """Set it all up, take the screenshot, stop it all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/dashboard-overview.png")
    out: Path = parser.parse_args().out
    with tempfile.TemporaryDirectory(prefix="errands-shot-") as folder:
        scratch = Path(folder)
        server = RedisServer(scratch / "redis").start()
        app = build(server.url, NAMESPACE)
        workers = Workers(server.url, NAMESPACE, scratch, app_spec=SPEC)
        try:
            workers.start("-Q", ",".join(QUEUES), "-c", "4", "--beat")
            _history(app, scratch)
            app.broker.set_paused("reports", True)
            for _ in range(37):
                app.send_task("resize", [0.0], queue="reports")
            for _ in range(3):
                app.send_task("resize", [60.0], queue="default")
            wait_until(
                lambda: sum(len(w.holding) for w in app.inspector.fleet().items) == 3,
                30.0,
                "the workers report the slow jobs they hold",
            )
            token = make_token(app, "admin", note="screenshot")
            with api_server(app, scratch, app_spec=SPEC) as api, chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{api.url}/login")
                page.get_by_label("Token").fill(token)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_selector("body[data-updated]", timeout=15_000)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
            print(f"wrote {out}")
        finally:
            workers.close()
            app.close()
            server.stop()


if __name__ == "__main__":
    main()
