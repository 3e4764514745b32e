# ruff: noqa
# mypy: ignore-errors
from celery.schedules import crontab

# Left from the Celery deployment, while beat still runs during the move.
CELERY_BEAT_SCHEDULE = {
    "morning-digest": {  # expect: ERR902
        "task": "digest_errands_schedules.jobs.send_digest",
        "schedule": crontab(hour=8),
    },
}
