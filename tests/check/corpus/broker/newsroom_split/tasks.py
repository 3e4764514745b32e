# ruff: noqa
# mypy: ignore-errors
from celery import shared_task


@shared_task
def export_section(section_id: int) -> list[int]:
    return [section_id]
