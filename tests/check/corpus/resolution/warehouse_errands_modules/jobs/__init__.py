# ruff: noqa
# mypy: ignore-errors
from .stock import recount
