# ruff: noqa
# mypy: ignore-errors
from django.db import models


class Invoice(models.Model):
    closed = models.BooleanField(default=False)
    email = models.EmailField()
    text = models.TextField()


class Payment(models.Model):
    invoice_id = models.IntegerField(unique=True)
    cents = models.IntegerField()


class AuditEntry(models.Model):
    action = models.CharField(max_length=20)
    target = models.IntegerField()


class SyncError(models.Model):
    invoice_id = models.IntegerField()
    text = models.TextField()
