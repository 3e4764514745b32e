# ruff: noqa
# mypy: ignore-errors
import stripe
from django.core.mail import send_mail

from errands import App

app = App("redis://redis:6379/0")


@app.task(queue="mail")
def send_welcome(user_id: int, email: str) -> None:
    send_mail("Welcome", "Hello!", None, [email])


@app.task
def charge(invoice_id: int, cents: int) -> None:
    stripe.PaymentIntent.create(
        amount=cents, currency="eur", idempotency_key=f"invoice-{invoice_id}"
    )


def signup(user_id: int, email: str) -> None:
    send_welcome.apply_async(args=(user_id, email), idempotency_key=f"welcome:{user_id}")
