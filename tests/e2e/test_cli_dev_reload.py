"""`errands dev APP --reload`: the worker restarts when a .py file of the project changes."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.workers import process_gone, wait_until

_APP = """
from errands import App

app = App(namespace={namespace!r})


@app.task
def hello() -> str:
    return "hello"
"""


def _serving_pids(log: Path) -> list[int]:
    """The pid in the id (host:pid:hex) of each worker that logged it was serving."""
    return [int(p) for p in re.findall(r"worker [^:\s]+:(\d+):\w+ serving", log.read_text())]


@pytest.mark.timeout(90)
def test_dev_reload_restarts_the_worker_when_a_python_file_changes(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    module = project / "devapp.py"
    module.write_text(_APP.format(namespace=namespace))
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "errands", "dev", "devapp:app", "--reload", "-c", "1"],
            cwd=project,
            env={**os.environ, "ERRANDS_BROKER_URL": redis_url, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: len(_serving_pids(log)) == 1, 30, "the first worker to serve")
        (project / "notes.txt").write_text("not python: no restart")
        module.write_text(module.read_text() + "\n# changed\n")
        wait_until(lambda: len(_serving_pids(log)) == 2, 30, "a second 'serving' line")
        first, second = _serving_pids(log)
        assert first != second, "a new worker process serves after the change"
        assert process_gone(first), "the first worker was stopped before the second started"
        assert "reloading: devapp.py changed" in log.read_text()
        assert "notes.txt" not in log.read_text()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()
    for pid in _serving_pids(log):
        wait_until(functools.partial(process_gone, pid), 10, f"worker {pid} to be gone")
