# ruff: noqa
# mypy: ignore-errors
CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 60
