# ruff: noqa
# mypy: ignore-errors
import requests
from django.core.mail import send_mail
from django.db import connection

from .celery import app
from .models import Invoice


@app.task
def close_invoice(invoice_id):  # expect: ERR801
    Invoice.objects.filter(pk=invoice_id).update(closed=True)


@app.task(acks_late=True)
def send_invoice(invoice_id):
    invoice = Invoice.objects.get(pk=invoice_id)
    send_mail("Your invoice", invoice.text, None, [invoice.email])  # expect: ERR802


@app.task(acks_late=True)
def notify_erp(invoice_id):
    requests.post(  # expect: ERR802
        "https://erp.example.com/invoices", json={"id": invoice_id}, timeout=10
    )


@app.task(acks_late=True)
def record_payment(invoice_id, cents):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger (invoice_id, cents) VALUES (%s, %s)",  # expect: ERR802
            [invoice_id, cents],
        )
