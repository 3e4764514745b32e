# ruff: noqa
# mypy: ignore-errors
from django.db import models


class Invoice(models.Model):
    paid = models.BooleanField(default=False)
