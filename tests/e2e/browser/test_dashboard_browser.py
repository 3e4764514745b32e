"""The dashboard in a real browser: log in, watch a queue fill and drain live, read a failed
job's traceback, retry a dead job and watch it succeed, pause a schedule with a note.

Each test runs a real ``errands api`` and, where jobs run, a real worker of
`tests.e2e.browser.dash_app`; Chromium is Debian's, headless (`tests.e2e.browser.chromium`).
Every wait is on a condition of the page, bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from errands import App
from tests.e2e.browser.chromium import chromium
from tests.e2e.browser.dash_app import SPEC
from tests.e2e.web_support import ApiServer, api_server, make_token
from tests.integration.workers import Workers, wait_until

pytestmark = pytest.mark.timeout(90)

#: Milliseconds a page condition may take (a worker's start and a few live updates).
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def server(app: App, tmp_path: Path) -> Iterator[ApiServer]:
    with api_server(app, tmp_path, app_spec=SPEC) as running:
        yield running


@pytest.fixture
def workers(app: App, tmp_path: Path) -> Iterator[Workers]:
    farm = Workers(app.broker_url, app.namespace, tmp_path, app_spec=SPEC)
    yield farm
    farm.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


def token(app: App, *scopes: str) -> str:
    """A new token with `scopes` (made off Playwright's event loop, which runs in this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(make_token, app, *scopes).result(timeout=10)


def log_in(page: Page, server: ApiServer, token: str, path: str = "/") -> None:
    """Open `path`, be sent to the login form, log in with `token`, land back on `path`."""
    page.goto(server.url + path)
    expect(page).to_have_url(f"{server.url}/login?next={path}")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(server.url + path)


def test_log_in_then_watch_a_queue_fill_and_drain_live(
    app: App, server: ApiServer, workers: Workers, page: Page
) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Token").fill("erd_wrong_token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked or expired")

    log_in(page, server, token(app, "read"), "/queues/default")
    ready = page.locator('dd[data-q="default"][data-f="ready"]')
    expect(ready).to_have_text("0")
    for _ in range(12):
        app.send_task("resize", [0.05])
    expect(ready).to_have_text("12")  # no reload: the live stream said so
    workers.start("--concurrency", "2")
    expect(ready).to_have_text("0")
    expect(page.locator('dd[data-q="default"][data-f="active"]')).to_have_text("0")
    assert page.url == server.url + "/queues/default"


def test_read_a_failed_jobs_traceback_then_retry_it_and_watch_it_succeed(
    app: App, server: ApiServer, workers: Workers, page: Page, tmp_path: Path
) -> None:
    flag = tmp_path / "card-ok"
    workers.start()
    job = app.send_task("charge", [str(flag)])
    wait_until(lambda: app.inspector.queue("default").dead == 1, 20.0, "the job dies")
    log_in(page, server, token(app, "read", "read:payloads", "operate"), "/dead")
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row).to_contain_text("PaymentDeclined")
    row.get_by_role("link", name=job.id).click()
    expect(page.locator("[data-j=state]")).to_have_text("dead")
    traceback = page.locator("pre.traceback")
    expect(traceback).to_contain_text("Traceback (most recent call last)")
    expect(traceback).to_contain_text("PaymentDeclined: card declined: no card-ok yet")

    flag.write_text("ok")
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("[data-j=state]")).to_have_text("succeeded")
    expect(page.locator("[data-j=result]")).to_have_text('"charged"')


def test_pause_a_schedule_with_a_note(app: App, server: ApiServer, page: Page) -> None:
    app.schedules.upsert("billing", "charge", cron="0 4 * * *", kwargs={"flag": "/nonexistent"})
    log_in(page, server, token(app, "read", "operate"), "/schedules")
    row = page.locator('tr[data-schedule="billing"]')
    expect(row).to_contain_text("running")
    row.get_by_label("pause note").fill("card processor migration, back Monday")
    row.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_have_text("paused billing")
    expect(row.locator("td.pause")).to_have_text("paused: card processor migration, back Monday")
    assert app.schedules.get("billing").pause.paused
    expect(page.locator('tr[data-schedule="digest"]')).to_contain_text("owned by code")
