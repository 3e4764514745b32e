# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("reports", broker="redis://redis:6379/0", backend="redis://redis:6379/1")
app.conf.update(task_acks_late=True, task_soft_time_limit=240, task_time_limit=300)
