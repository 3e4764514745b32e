# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("media", broker="redis://redis:6379/0")
app.conf.task_acks_late = True
