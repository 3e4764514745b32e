# ruff: noqa
# mypy: ignore-errors
from .sms import notify_patient

__all__ = ["notify_patient"]
