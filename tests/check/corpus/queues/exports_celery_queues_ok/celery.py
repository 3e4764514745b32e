# ruff: noqa
# mypy: ignore-errors
from celery import Celery
from kombu import Queue

app = Celery("exports", broker="amqp://guest:guest@rabbitmq:5672//")
app.conf.update(
    task_acks_late=True,
    task_soft_time_limit=50,
    task_time_limit=60,
    task_queues=[
        Queue("celery", queue_arguments={"x-max-priority": 10}),
        Queue("exports"),
    ],
)


@app.task
def send_password_reset(user_id):
    print(user_id)


@app.task(priority=9)
def page_on_call(incident_id):
    print(incident_id)


@app.task(queue="exports", soft_time_limit=3540, time_limit=3600)
def export_account(account_id):
    print(account_id)
