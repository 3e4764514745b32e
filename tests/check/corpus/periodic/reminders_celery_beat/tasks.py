# ruff: noqa
# mypy: ignore-errors
from .celery import app


@app.task
def send_digest():
    print("digest")
