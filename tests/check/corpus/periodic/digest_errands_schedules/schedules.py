# ruff: noqa
# mypy: ignore-errors
from .jobs import app, send_digest

app.periodic(send_digest, cron="0 8 * * *")
