# ruff: noqa
# mypy: ignore-errors
import errands

# Left over from the Celery days, when the database was the broker.
app = errands.App("postgresql://kiosk@db/kiosk")  # expect: ERR101


@app.task(queue="tickets")
def print_ticket(ticket_id: int) -> None:
    print("ticket", ticket_id)
