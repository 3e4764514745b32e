# ruff: noqa
# mypy: ignore-errors
from celery import Celery as CeleryApp

celery_app = CeleryApp("clinic", broker="redis://redis:6379/0")
celery_app.conf.update(task_acks_late=True, task_soft_time_limit=50, task_time_limit=60)
