"""Without Debian's Chromium the browser tests fail, naming the install command (never skip)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import chromium as module


def test_a_missing_chromium_fails_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(AssertionError, match="apt-get install -y chromium"), module.chromium():
        pass
