# ruff: noqa
# mypy: ignore-errors
import os

from errands import App

app = App(os.environ.get("ERRANDS_BROKER_URL", "redis://redis:6379/0"))


@app.task(queue="tickets")
def print_ticket(ticket_id: int) -> None:
    print("ticket", ticket_id)
