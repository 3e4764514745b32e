# ruff: noqa
# mypy: ignore-errors
from errands import App

app = App("redis://redis:6379/0")


@app.task
def send_digest() -> None:
    print("digest")


@app.task
def cleanup() -> None:
    print("cleanup")


app.periodic(send_digest, cron="0 8 * * *")
app.periodic(cleanup, every=3600)
