# ruff: noqa
# mypy: ignore-errors
import errands as queue_lib

app = queue_lib.App("redis://redis:6379/0", default_queue="warehouse")
