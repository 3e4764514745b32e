# ruff: noqa
# mypy: ignore-errors
class RateLimited(Exception):
    retry_after = 30


def push_invoice(invoice_id):
    print(invoice_id)


def refresh_token(account_id):
    print(account_id)
