# ruff: noqa
# mypy: ignore-errors
from .celery import app


@app.task
def send_digest():
    print("digest")


@app.task
def cleanup():
    print("cleanup")
