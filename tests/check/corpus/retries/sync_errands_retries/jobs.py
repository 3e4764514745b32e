# ruff: noqa
# mypy: ignore-errors
from .app import app


@app.task(max_retries=None, autoretry_for=(ConnectionError, TimeoutError))  # expect: ERR401
def sync_contacts(account_id: int) -> None:
    print(account_id)


@app.task(retry_backoff=False)  # expect: ERR403
def push_order(order_id: int) -> None:
    print(order_id)


@app.task(retry_backoff=2.0, retry_jitter=False)  # expect: ERR404
def pull_prices(feed: str) -> None:
    print(feed)


@app.task(max_retries=None)  # expect: ERR405
def mirror(bucket: str) -> None:
    print(bucket)
