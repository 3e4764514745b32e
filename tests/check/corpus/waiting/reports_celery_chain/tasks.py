# ruff: noqa
# mypy: ignore-errors
import queue

import requests
from celery import chain, chord
from django.core.cache import cache

from .celery import app

_local = queue.Queue()


@app.task
def fetch_rows(account_id):
    response = requests.get(f"https://api.example.com/rows/{account_id}", timeout=10)
    return response.json()


@app.task
def render(rows):
    options = {"format": "pdf"}
    return {"pages": len(rows), "format": options.get("format")}


@app.task
def shard_total(account_id, shard):
    return shard


@app.task
def add_up(totals):
    return sum(totals)


@app.task
def build_report(account_id):
    cached = cache.get(f"report:{account_id}")
    if cached:
        return cached
    return chain(fetch_rows.s(account_id), render.s()).delay().id


@app.task
def total(account_id):
    return chord(shard_total.s(account_id, s) for s in range(8))(add_up.s()).id


@app.task
def drain():
    item = _local.get(timeout=1)
    return item


def report_view(request, account_id):
    return build_report.delay(account_id).get(timeout=5)
