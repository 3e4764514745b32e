# ruff: noqa
# mypy: ignore-errors
import stripe
from django.core.mail import EmailMultiAlternatives

from errands import App

from .models import Invoice

app = App("redis://redis:6379/0")


@app.task(queue="mail")
def send_welcome(user_id: int, email: str) -> None:
    message = EmailMultiAlternatives("Welcome", "Hello!", to=[email])
    message.attach_alternative("<p>Hello!</p>", "text/html")
    message.send()  # expect: ERR802


@app.task
def charge(invoice_id: int, cents: int) -> None:
    stripe.PaymentIntent.create(amount=cents, currency="eur")  # expect: ERR802
    Invoice.objects.filter(pk=invoice_id).update(paid=True)
