# ruff: noqa
# mypy: ignore-errors
from celery import shared_task

from .celery import app
from .gateway import GatewayTimeout, gateway


@app.task(max_retries=5)
def charge(self, order_id):
    try:
        gateway.capture(order_id)
    except GatewayTimeout as exc:
        raise self.retry(exc=exc)  # expect: ERR601


@shared_task
def refund(order_id):
    print("refund", order_id, self.request.id)  # expect: ERR601
