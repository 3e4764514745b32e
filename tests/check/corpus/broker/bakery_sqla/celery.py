# ruff: noqa
# mypy: ignore-errors
import os

from celery import Celery

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://bakery:secret@db/bakery")

app = Celery("bakery", broker="sqla+postgresql://bakery:secret@db/bakery")  # expect: ERR101
app.conf.update(
    task_acks_late=True,
    task_soft_time_limit=50,
    task_time_limit=60,
    broker_read_url=f"sqla+{DATABASE_URL}",  # expect: ERR101
)
