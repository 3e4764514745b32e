"""`errands dev --reload` without the reload extra says what to install (no Redis needed)."""

from __future__ import annotations

import sys

import pytest

from errands.cli_dev import reloader
from errands.errors import ConfigurationError


def test_reload_without_watchfiles_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # import watchfiles raises ImportError
    with pytest.raises(ConfigurationError, match=r"pip install 'errands\[reload\]'"):
        reloader("app:app", None, 1, "info")
