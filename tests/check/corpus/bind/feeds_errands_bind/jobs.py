# ruff: noqa
# mypy: ignore-errors
import httpx

from errands import App

app = App("redis://redis:6379/0")


@app.task(max_retries=4)
def import_feed(ctx, url: str) -> None:
    try:
        httpx.get(url, timeout=10)
    except httpx.TransportError as exc:
        ctx.retry(countdown=30, exc=exc)  # expect: ERR601


@app.task
def parse_feed(url: str) -> None:
    ctx.log.info("parsing %s", url)  # expect: ERR601
