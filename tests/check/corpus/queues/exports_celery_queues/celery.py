# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("exports")
app.config_from_object("exports_celery_queues.celeryconfig")
