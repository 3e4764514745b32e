# ruff: noqa
# mypy: ignore-errors
from celery.schedules import crontab

from .celery import app


@app.task
def send_digest():
    print("digest")


@app.task
def cleanup():
    print("cleanup")


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.add_periodic_task(crontab(hour=8), send_digest.s(), name="digest")  # expect: ERR902
