# ruff: noqa
# mypy: ignore-errors
from celery import shared_task

from .models import Order


@shared_task
def send_receipt(order_id: int) -> None:
    order = Order.objects.get(pk=order_id)
    print(order)


@shared_task
def schedule_followup(order_id: int, when: str) -> None:
    print(order_id, when)


@shared_task
def reindex(order_ids: list[int]) -> None:
    print(order_ids)


@shared_task(bind=True)
def charge(self, order_id: int) -> None:
    reindex.delay([order_id])
    schedule_followup.delay(order_id, when=self.request.id)
