# ruff: noqa
# mypy: ignore-errors
from django.utils import timezone

from .models import Order
from .tasks import reindex, schedule_followup, send_receipt


def checkout(request, pk):
    order = Order.objects.get(pk=pk)
    send_receipt.delay(order.pk)
    schedule_followup.delay(order.pk, timezone.now().isoformat())
    unpaid = list(Order.objects.filter(paid=False).values_list("pk", flat=True))
    reindex.delay(unpaid)
    reindex.apply_async(args=([order.pk],), eta=timezone.now())


def retry_payment(request, pk):
    # The same name bound to an instance and to its key: the checker cannot know, so it is quiet.
    order = Order.objects.get(pk=pk)
    order = order.pk
    send_receipt.delay(order)
    data = {"id": pk}.get("id")
    send_receipt.delay(data)
