# ruff: noqa
# mypy: ignore-errors
from django.db import models


class Invoice(models.Model):
    closed = models.BooleanField(default=False)
    email = models.EmailField()
    text = models.TextField()
