# ruff: noqa
# mypy: ignore-errors
from celery import shared_task


@shared_task
def generate_thumbnails(image_id):
    print(image_id)
