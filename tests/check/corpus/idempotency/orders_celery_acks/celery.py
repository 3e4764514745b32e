# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("orders", broker="redis://redis:6379/0")
app.conf.task_soft_time_limit = 50
app.conf.task_time_limit = 60
