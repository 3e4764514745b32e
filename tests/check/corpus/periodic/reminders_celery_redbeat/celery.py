# ruff: noqa
# mypy: ignore-errors
from celery import Celery
from celery.schedules import crontab

app = Celery("reminders", broker="redis://redis:6379/0")
app.conf.update(task_acks_late=True, task_soft_time_limit=50, task_time_limit=60)
app.conf.beat_schedule = {
    "morning-digest": {
        "task": "reminders_celery_redbeat.tasks.send_digest",
        "schedule": crontab(hour=8),
    },
}
app.conf.beat_schedule["cleanup"] = {
    "task": "reminders_celery_redbeat.tasks.cleanup",
    "schedule": crontab(minute=0),
}
