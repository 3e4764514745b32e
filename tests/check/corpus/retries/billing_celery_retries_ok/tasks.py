# ruff: noqa
# mypy: ignore-errors
import requests
from celery import Celery, Task
from django.db import DatabaseError

app = Celery("billing", broker="redis://redis:6379/0")
app.conf.update(task_acks_late=True, task_soft_time_limit=50, task_time_limit=60)


class BackoffTask(Task):
    autoretry_for = (ConnectionError,)
    retry_backoff = True
    max_retries = 6


@app.task(bind=True, max_retries=8)
def sync_invoice(self, invoice_id):
    try:
        print(invoice_id)
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=30)


@app.task(
    autoretry_for=(requests.RequestException,),
    max_retries=5,
    retry_backoff=True,
    retry_backoff_max=600,
)
def push_webhook(event_id):
    requests.put(f"https://hooks.example.com/{event_id}", timeout=10)


@app.task(base=BackoffTask)
def rebuild_ledger(shard):
    print(shard)


@app.task(autoretry_for=(Exception,), max_retries=3, retry_backoff=True)
def import_feed(feed_id):
    # Every error is retried, but three times at most.
    print(feed_id)


@app.task
def reconcile(invoice_id):
    try:
        print(invoice_id)
    except DatabaseError as exc:
        raise reconcile.retry(exc=exc)
