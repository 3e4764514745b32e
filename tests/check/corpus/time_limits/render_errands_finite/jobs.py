# ruff: noqa
# mypy: ignore-errors
from datetime import timedelta

import errands

app = errands.App("redis://redis:6379/0")


@app.task(
    queue="render", soft_time_limit=timedelta(hours=2), time_limit=timedelta(hours=2, minutes=5)
)
def render_scene(scene_id: int) -> None:
    print(scene_id)


@app.task(time_limit=None)
def thumbnail(scene_id: int) -> None:
    # None means the app's default here, which is finite.
    print(scene_id)
