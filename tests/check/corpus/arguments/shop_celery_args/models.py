# ruff: noqa
# mypy: ignore-errors
from django.db import models


class Customer(models.Model):
    email = models.EmailField()


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    paid = models.BooleanField(default=False)
