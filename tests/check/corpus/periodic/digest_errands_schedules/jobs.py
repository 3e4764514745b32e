# ruff: noqa
# mypy: ignore-errors
from errands import App

app = App("redis://redis:6379/0")


@app.task
def send_digest() -> None:
    print("digest")
