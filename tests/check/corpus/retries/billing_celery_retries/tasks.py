# ruff: noqa
# mypy: ignore-errors
import requests
from django.db import DatabaseError

from .celery import app
from .gateway import RateLimited, push_invoice, refresh_token


@app.task(bind=True, max_retries=None)  # expect: ERR401
def sync_invoice(self, invoice_id):
    try:
        push_invoice(invoice_id)
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=30)


@app.task(bind=True, max_retries=5)
def refresh(self, account_id):
    try:
        refresh_token(account_id)
    except RateLimited as exc:
        raise self.retry(exc=exc, max_retries=None)  # expect: ERR402


@app.task(autoretry_for=(requests.RequestException,), max_retries=5)  # expect: ERR403
def push_webhook(event_id):
    requests.put(f"https://hooks.example.com/{event_id}", timeout=10)


@app.task(
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=False,  # expect: ERR404
)
def rebuild_ledger(shard):
    print(shard)


@app.task(autoretry_for=(Exception,), max_retries=None, retry_backoff=True)  # expect: ERR405
def import_feed(feed_id):
    print(feed_id)


@app.task(bind=True, retry_backoff=True)
def settle(self, invoice_id):
    try:
        push_invoice(invoice_id)
    except Exception as exc:
        raise self.retry(exc=exc, max_retries=None)  # expect: ERR405
