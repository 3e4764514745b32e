# ruff: noqa
# mypy: ignore-errors
import datetime as dt

from warehouse_errands_modules import jobs


def recount_view(request, sku: str):
    jobs.recount.delay(sku, dt.date.today())  # expect: ERR201
    return jobs.recount.delay(sku, None).get(timeout=5)
