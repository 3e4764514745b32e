# ruff: noqa
# mypy: ignore-errors
from errands import App, chain

app = App("redis://redis:6379/0")


@app.task
def resize(image_id: int) -> str:
    return f"thumbs/{image_id}.webp"


@app.task
def publish(key: str) -> None:
    settings = {"cdn": True}
    print(key, settings.get("cdn"))


def upload_view(image_id: int) -> str:
    chain(resize.s(image_id), publish.s()).delay()
    # Outside a task, waiting is allowed.
    return resize.delay(image_id).get(timeout=10)
