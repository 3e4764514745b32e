# ruff: noqa
# mypy: ignore-errors
from celery import Celery
from flask import Flask


def make_celery(flask_app: Flask) -> Celery:
    celery = Celery(flask_app.import_name, broker=flask_app.config["CELERY_BROKER_URL"])
    celery.conf.update(task_acks_late=True)
    return celery
