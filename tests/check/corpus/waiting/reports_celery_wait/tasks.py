# ruff: noqa
# mypy: ignore-errors
import time

import requests
from celery import group
from celery.result import AsyncResult, allow_join_result
from django.core.cache import cache

from .celery import app


@app.task
def fetch_rows(account_id):
    return requests.get(f"https://api.example.com/rows/{account_id}", timeout=10).json()


@app.task
def shard_total(account_id, shard):
    return shard


@app.task
def build_report(account_id):
    rows = fetch_rows.delay(account_id).get(timeout=60)  # expect: ERR301
    cached = cache.get(f"report:{account_id}")
    return cached or len(rows)


@app.task
def total(account_id):
    results = [shard_total.delay(account_id, shard) for shard in range(8)]
    return sum(result.get() for result in results)  # expect: ERR301


@app.task
def fan_out(account_ids):
    job = group(fetch_rows.s(a) for a in account_ids)()
    with allow_join_result():
        return job.join()  # expect: ERR301


@app.task
def export(account_id):
    job = fetch_rows.apply_async(args=(account_id,))
    while not job.ready():  # expect: ERR302
        time.sleep(1)
    return job.result


def wait_for(task_id):
    return AsyncResult(task_id).get(propagate=False)


def collect(task_ids):
    return [wait_for(t) for t in task_ids]


@app.task
def finish(task_ids):
    values = collect(task_ids)  # expect: ERR301
    return len(values)


@app.task
def rerun(task_id):
    value = app.send_task("reports.fetch_rows", args=[task_id])
    if value.ready():
        return value.result
    return None


def report_view(request, account_id):
    # Not a task: a web request may wait for a result.
    return build_report.delay(account_id).get(timeout=5)
