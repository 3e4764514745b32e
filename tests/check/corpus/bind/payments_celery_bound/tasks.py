# ruff: noqa
# mypy: ignore-errors
from celery import Celery

app = Celery("payments", broker="redis://redis:6379/0")
app.conf.update(task_acks_late=True, task_soft_time_limit=20, task_time_limit=30)


class Gateway:
    def capture(self, order_id):
        # A method's own self is not a task context.
        self.request = order_id


@app.task(bind=True, max_retries=5)
def charge(self, order_id):
    try:
        Gateway().capture(order_id)
    except TimeoutError as exc:
        raise self.retry(exc=exc)


@app.task(max_retries=5)
def refund(order_id):
    try:
        Gateway().capture(order_id)
    except TimeoutError as exc:
        raise refund.retry(exc=exc)
