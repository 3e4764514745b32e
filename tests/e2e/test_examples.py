"""Every example in examples/ runs to the end and exits 0, so the docs' examples cannot rot.

Each example starts its own worker (``python -m errands worker examples.<name>:app``), checks
what it shows, stops the worker with SIGTERM and deletes its keys; it exits non-zero when
something it shows did not hold.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = (
    "quickstart",
    "retries",
    "time_limits",
    "idempotency",
    "priorities",
    "middleware",
    "scheduling",
    "limits",
    "progress",
)
TIMEOUT_S = 30.0


def test_every_example_file_is_tested() -> None:
    found = {path.stem for path in (ROOT / "examples").glob("*.py")} - {"__init__", "_harness"}
    assert found == set(EXAMPLES)


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


@pytest.mark.timeout(TIMEOUT_S + 10)
@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_runs_and_exits_0(name: str, redis_url: str, namespace: str) -> None:
    env = {**os.environ, "ERRANDS_BROKER_URL": redis_url, "ERRANDS_NAMESPACE": namespace}
    try:
        done = subprocess.run(
            [sys.executable, f"examples/{name}.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = [_text(error.stdout), _text(error.stderr)]
        pytest.fail(f"examples/{name}.py ran past {TIMEOUT_S:g}s:\n" + "\n".join(output))
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "[FAILED]" not in done.stdout
