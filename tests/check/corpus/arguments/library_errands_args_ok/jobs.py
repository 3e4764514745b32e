# ruff: noqa
# mypy: ignore-errors
from datetime import datetime, timedelta

import errands

app = errands.App("redis://redis:6379/0")


@app.task(queue="mail")
def remind(book_id: int, due: str) -> None:
    print(book_id, due)


@app.task(bind=True)
def renew(ctx: errands.TaskContext, loan_id: int) -> None:
    remind.delay(loan_id, due=(datetime.now() + timedelta(days=14)).isoformat())
    remind.apply_async(
        args=(loan_id, "tomorrow"), countdown=timedelta(hours=1), idempotency_key=ctx.id
    )


def overdue(session, book_id: int) -> None:
    remind.delay(book_id, str(datetime.now().date()))
    renew.s(book_id).delay()
    app.send_task("library.renew", args=[book_id], kwargs={"note": "auto"})
