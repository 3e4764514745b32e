# ruff: noqa
# mypy: ignore-errors
from celery import Celery
from celery.schedules import crontab

app = Celery("reminders")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = {
    "cleanup": {"task": "reminders_celery_schedules.tasks.cleanup", "schedule": crontab(minute=0)},
}
