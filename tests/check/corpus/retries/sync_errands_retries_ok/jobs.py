# ruff: noqa
# mypy: ignore-errors
from errands import App, TaskContext

app = App("redis://redis:6379/0", max_retries=5)


@app.task(max_retries=8, autoretry_for=(ConnectionError, TimeoutError))
def sync_contacts(account_id: int) -> None:
    print(account_id)


@app.task(autoretry_for=(), retry_backoff=False)
def push_order(order_id: int) -> None:
    # Never retried automatically, so backoff does not matter.
    print(order_id)


@app.task(bind=True, retry_backoff=2.0)
def pull_prices(ctx: TaskContext, feed: str) -> None:
    try:
        print(feed)
    except Exception as exc:
        ctx.retry(countdown=10, exc=exc)
