# ruff: noqa
# mypy: ignore-errors
from celery import shared_task as background


@background
def purge_sessions(older_than):
    print(older_than)
