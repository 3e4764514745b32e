# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("billing", broker="redis://redis:6379/0")
app.conf.update(task_acks_late=True, task_soft_time_limit=50, task_time_limit=60)
