# ruff: noqa
# mypy: ignore-errors
from .celery import app
from .ovens import start_oven


@app.task
def bake_batch(batch_id: int) -> None:
    start_oven(batch_id)
