# ruff: noqa
# mypy: ignore-errors
import httpx

from errands import App, TaskContext

app = App("redis://redis:6379/0")


@app.task(bind=True, max_retries=4)
def import_feed(ctx: TaskContext, url: str) -> None:
    try:
        httpx.get(url, timeout=10)
    except httpx.TransportError as exc:
        ctx.retry(countdown=30, exc=exc)
    ctx.log.info("imported %s on attempt %d", url, ctx.attempt)
