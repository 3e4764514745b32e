# ruff: noqa
# mypy: ignore-errors
from datetime import timedelta

from errands import App

app = App("redis://redis:6379/0")


@app.task
def send_password_reset(user_id: int) -> None:
    print(user_id)


@app.task(priority=9)
def page_on_call(incident_id: int) -> None:
    print(incident_id)


@app.task(soft_time_limit=timedelta(minutes=55), time_limit=timedelta(hours=1))
def export_account(account_id: int) -> None:  # expect: ERR701
    print(account_id)
