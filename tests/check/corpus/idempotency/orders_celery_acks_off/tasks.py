# ruff: noqa
# mypy: ignore-errors
from celery import shared_task


@shared_task(acks_late=False)  # expect: ERR801
def warm_cache(key):
    print(key)
