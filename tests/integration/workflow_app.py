"""Tasks for the workflow integration test (a worker process imports this module)."""

from __future__ import annotations

import os

from errands import App

app = App(
    os.environ.get("ERRANDS_BROKER_URL"), namespace=os.environ.get("ERRANDS_TEST_NAMESPACE", "x")
)


@app.task(name="wf.add", queue="wf")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="wf.square", queue="wf-other")
def square(x: int) -> int:
    return x * x


@app.task(name="wf.total", queue="wf")
def total(values: list[int]) -> int:
    return sum(values)
