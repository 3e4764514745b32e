# ruff: noqa
# mypy: ignore-errors
import errands

app = errands.App("redis://redis:6379/0", max_retries=None)  # expect: ERR401
