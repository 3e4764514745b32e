# ruff: noqa
# mypy: ignore-errors
from celery import shared_task

from .models import Article


@shared_task
def export_section(section_id: int) -> list[dict[str, str]]:
    return [a.as_dict() for a in Article.objects.filter(section_id=section_id)]


@shared_task(ignore_result=True)
def reindex(article_id: int) -> None:
    Article.objects.get(pk=article_id).reindex()
