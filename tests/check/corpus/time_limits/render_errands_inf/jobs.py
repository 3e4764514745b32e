# ruff: noqa
# mypy: ignore-errors
import math

import errands

app = errands.App("redis://redis:6379/0", soft_time_limit=math.inf)  # expect: ERR501


@app.task(time_limit=float("inf"))  # expect: ERR501
def render_scene(scene_id: int) -> None:
    print(scene_id)
