"""Debian's Chromium under Playwright, as the browser tests and the screenshot script run it.

Never ``playwright install``: the tests use the system's ``/usr/bin/chromium`` (``.ci/run``
installs it where it is missing) with flags that keep it off the network it does not need.
Without it the tests fail, naming the command that installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

__all__ = ["CHROMIUM", "FLAGS", "INSTALL", "chromium"]

#: Where Debian puts Chromium.
CHROMIUM = "/usr/bin/chromium"
#: How to get it.
INSTALL = "apt-get install -y chromium"
#: Headless, no sandbox (CI runs as root), and nothing fetched behind the page's back: this
#: machine's closed network refuses such connections, slowly.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumMissing(AssertionError):
    """Debian's Chromium is not installed: the browser tests cannot run (and must not pass)."""


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed at the end of the block.

    Raises:
        ChromiumMissing: ``/usr/bin/chromium`` is not there (the message says how to install it).
    """
    if not os.access(CHROMIUM, os.X_OK):
        raise ChromiumMissing(
            f"the dashboard's browser tests need Debian's Chromium at {CHROMIUM}: {INSTALL}"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS))
        try:
            yield browser
        finally:
            browser.close()
