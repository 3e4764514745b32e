# ruff: noqa
# mypy: ignore-errors
from celery import shared_task

from .models import Order


@shared_task
def send_receipt(order):
    print(order.customer.email)


@shared_task
def schedule_followup(order_id, when):
    print(order_id, when)


@shared_task
def audit(actor):
    print(actor)


@shared_task
def import_rows(source):
    print(source)


@shared_task
def reindex(orders):
    print(orders)


@shared_task(serializer="pickle")  # expect: ERR202
def rebuild_cart(cart):
    print(cart)


@shared_task(bind=True)
def charge(self, order_id):
    # Passing the task itself along: it is not a value.
    audit.delay(self)  # expect: ERR201
