# ruff: noqa
# mypy: ignore-errors
from celery.schedules import crontab

CELERY_BROKER_URL = "redis://redis:6379/0"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 60
CELERY_BEAT_SCHEDULE = {  # expect: ERR902
    "morning-digest": {
        "task": "reminders_celery_schedules.tasks.send_digest",
        "schedule": crontab(hour=8),
    },
}
