# ruff: noqa
# mypy: ignore-errors
import os

from celery import Celery

app = Celery(
    "bakery",
    broker=os.environ.get("BROKER_URL", "redis://redis:6379/0"),
    backend="redis://redis:6379/1",
)
app.conf.update(task_acks_late=True, task_soft_time_limit=50, task_time_limit=60)


@app.task
def bake_batch(batch_id: int) -> list[int]:
    return [batch_id * 10 + tray for tray in range(4)]
