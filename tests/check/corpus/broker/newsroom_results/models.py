# ruff: noqa
# mypy: ignore-errors
from django.db import models


class Article(models.Model):
    title = models.CharField(max_length=200)
    section_id = models.IntegerField()

    def as_dict(self) -> dict[str, str]:
        return {"title": self.title}

    def reindex(self) -> None:
        pass
