# ruff: noqa
# mypy: ignore-errors
import asyncio

import errands

app = errands.App("redis://redis:6379/0")


@app.task
def resize(image_id: int) -> str:
    return f"thumbs/{image_id}.webp"


@app.task
def publish(image_id: int) -> None:
    thumb = resize.delay(image_id)
    key = thumb.get(timeout=30)  # expect: ERR301
    print(key)


@app.task
async def publish_async(image_id: int) -> None:
    thumb = await resize.adelay(image_id)
    print(await thumb.aget(timeout=30))  # expect: ERR301


def _state_of(job_id: str) -> str:
    return app.result(job_id).get(timeout=1)


@app.task
def audit(job_ids: list[str]) -> int:
    return len([_state_of(j) for j in job_ids])  # expect: ERR301


@app.task
async def wait_ready(job_id: str) -> None:
    job = app.result(job_id)
    while job.state != "succeeded":  # expect: ERR302
        await asyncio.sleep(1)
