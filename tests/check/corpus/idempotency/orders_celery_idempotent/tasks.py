# ruff: noqa
# mypy: ignore-errors
import requests
from celery_once import QueueOnce
from django.core.mail import send_mail
from django.db import connection

from .celery import app
from .models import AuditEntry, Invoice, Payment, SyncError


@app.task
def close_invoice(invoice_id):
    Invoice.objects.filter(pk=invoice_id).update(closed=True)


@app.task
def record_payment(invoice_id, cents):
    Payment.objects.update_or_create(invoice_id=invoice_id, defaults={"cents": cents})
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger (invoice_id, cents) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [invoice_id, cents],
        )


@app.task
def notify_erp(invoice_id):
    requests.post(
        "https://erp.example.com/invoices",
        json={"id": invoice_id},
        headers={"Idempotency-Key": f"invoice-{invoice_id}"},
        timeout=10,
    )


@app.task(base=QueueOnce, once={"keys": ["invoice_id"]})
def send_invoice(invoice_id):
    invoice = Invoice.objects.get(pk=invoice_id)
    send_mail("Your invoice", invoice.text, None, [invoice.email])


@app.task
def remove_invoice(invoice_id):
    # Exits when the row is gone, and deletes it: a second run writes nothing.
    try:
        invoice = Invoice.objects.get(pk=invoice_id)
    except Invoice.DoesNotExist:
        return
    AuditEntry.objects.create(action="remove", target=invoice_id)
    invoice.delete()


@app.task
def import_payments(rows):
    # Creates only the payments the lookup did not find.
    known = set(
        Payment.objects.filter(invoice_id__in=[r["invoice"] for r in rows]).values_list(
            "invoice_id", flat=True
        )
    )
    Payment.objects.bulk_create(
        [
            Payment(invoice_id=r["invoice"], cents=r["cents"])
            for r in rows
            if r["invoice"] not in known
        ]
    )


@app.task
def push_invoice(invoice_id):
    try:
        requests.put(f"https://erp.example.com/invoices/{invoice_id}", timeout=10)
    except requests.RequestException as exc:
        # Recording the failure: a second record of it is harmless.
        SyncError.objects.create(invoice_id=invoice_id, text=str(exc))
        raise
