# ruff: noqa
# mypy: ignore-errors
broker_url = "amqp://guest:guest@rabbitmq:5672//"
task_acks_late = True
task_soft_time_limit = 50
task_time_limit = 60
task_routes = {
    "exports_celery_queues.tasks.thumbnail_*": {"queue": "media"},
    "exports_celery_queues.tasks.nightly_rollup": "reports",
}
