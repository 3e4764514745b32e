# ruff: noqa
# mypy: ignore-errors
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

from errands import TaskContext

from .app import app
from .models import Book, Loan


@app.task(queue="mail")
def remind(book_id, due):
    print(book_id, due)


@app.task
def charge_fine(member_id, amount):
    print(member_id, amount)


@app.task
def archive(path):
    print(path)


@app.task(bind=True)
def renew(ctx: TaskContext, loan):
    charge_fine.delay(ctx, 0)  # expect: ERR201
