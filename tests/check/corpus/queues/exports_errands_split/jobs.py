# ruff: noqa
# mypy: ignore-errors
from datetime import timedelta

from errands import App

app = App("redis://redis:6379/0")


@app.task
def send_password_reset(user_id: int) -> None:
    print(user_id)


@app.task(queue="exports", soft_time_limit=timedelta(minutes=55), time_limit=timedelta(hours=1))
def export_account(account_id: int) -> None:
    print(account_id)


@app.task(time_limit=3600)
def reprocess(account_id: int) -> None:
    print(account_id)


def retry_export(account_id: int) -> None:
    # Sent to a queue of its own at every call: not a default-queue task.
    reprocess.apply_async(args=(account_id,), queue="exports")
