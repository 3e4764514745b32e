# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("bakery")
app.config_from_object("bakery_sqs.celeryconfig")


@app.task
def deliver(order_id: int) -> None:
    print("deliver", order_id)
