# ruff: noqa
# mypy: ignore-errors
from django.db import models


class Patient(models.Model):
    phone = models.CharField(max_length=20)
