# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("newsroom")
app.config_from_object("django.conf:settings", namespace="CELERY")
