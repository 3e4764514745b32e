# ruff: noqa
# mypy: ignore-errors
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views import View

from .models import Customer, Order
from .tasks import audit, import_rows, rebuild_cart, reindex, schedule_followup
from .tasks import send_receipt as receipt_task


def checkout(request, pk):
    order = Order.objects.get(pk=pk)
    receipt_task.delay(order)  # expect: ERR201
    schedule_followup.delay(order.pk, timezone.now())  # expect: ERR201
    audit.apply_async(args=(request.user,), countdown=5)  # expect: ERR201
    return order


def bulk_reindex(request):
    unpaid = Order.objects.filter(paid=False)
    reindex.delay(unpaid)  # expect: ERR201
    reindex.apply_async(kwargs={"orders": Order.objects.all()})  # expect: ERR201


def upload(request):
    with open("/srv/uploads/latest.csv") as handle:
        import_rows.delay(handle)  # expect: ERR201


def customer_cart(request, pk):
    customer = get_object_or_404(Customer, pk=pk)
    rebuild_cart.s(customer).delay()  # expect: ERR201
    rebuild_cart.apply_async((pk,), serializer="pickle")  # expect: ERR202


class OrderView(View):
    def post(self, request, pk):
        receipt_task.delay(self)  # expect: ERR201
        audit.delay(actor=lambda: request.user.pk)  # expect: ERR201
