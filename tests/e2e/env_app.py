"""Test apps that the CLI imports by name, built from the test's environment.

A test names its Redis and namespace in ``ERRANDS_BROKER_URL`` and ``ERRANDS_TEST_NAMESPACE``;
``module:app`` then builds the app there, anew at each import of the attribute (each test has its
own namespace). `run_errands` runs ``python -m errands`` the way an operator would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from errands import App

__all__ = ["ROOT", "app_attribute", "environment", "run_errands"]

#: The repository's root, from where ``tests.e2e....:app`` imports.
ROOT = Path(__file__).resolve().parents[2]


def app_attribute(module: str, name: str, build: Callable[[str, str], App]) -> App:
    """The module attribute ``app``, built by `build` from the environment."""
    if name != "app":
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return build(os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"])


def environment(app: App, spec: str, **extra: str) -> dict[str, str]:
    """The variables that make ``ERRANDS_APP=spec`` name `app`."""
    return {
        "ERRANDS_APP": spec,
        "ERRANDS_BROKER_URL": app.broker_url,
        "ERRANDS_TEST_NAMESPACE": app.namespace,
        **extra,
    }


def run_errands(app: App, spec: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m errands ARGS`` with stdout a pipe, from the repository's root."""
    return subprocess.run(
        [sys.executable, "-m", "errands", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, **environment(app, spec, **extra)},
    )
