"""Chains and chords end to end: a real worker process, real Redis, several queues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from errands import chain, chord
from tests.integration import workflow_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[None]:
    env = {**os.environ, "ERRANDS_BROKER_URL": redis_url, "ERRANDS_TEST_NAMESPACE": namespace}
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "errands",
            "worker",
            "tests.integration.workflow_app:app",
            "-Q",
            "wf,wf-other",
            "-c",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def app(redis_url: str, namespace: str) -> Iterator[object]:
    workflow_app.app.broker_url = redis_url
    workflow_app.app.namespace = namespace
    workflow_app.app._broker = None
    yield workflow_app.app
    workflow_app.app.close()
    workflow_app.app._broker = None


@pytest.mark.usefixtures("app", "worker")
def test_a_chain_across_queues_and_a_chord_run_to_the_end() -> None:
    steps = chain(
        workflow_app.add.s(1, 2),
        workflow_app.square.partial(),
        workflow_app.add.partial(1),
    ).delay()
    assert steps.get(timeout=30) == 10

    fan_in = chord([workflow_app.square.s(i) for i in range(10)], workflow_app.total.partial())
    assert fan_in.delay().get(timeout=30) == sum(i * i for i in range(10))
