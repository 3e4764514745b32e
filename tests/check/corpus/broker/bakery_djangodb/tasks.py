# ruff: noqa
# mypy: ignore-errors
from celery import shared_task


@shared_task
def restock(ingredient: str, grams: int) -> None:
    print("restock", ingredient, grams)
