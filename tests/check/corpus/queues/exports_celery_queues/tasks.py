# ruff: noqa
# mypy: ignore-errors
from .celery import app

HOUR = 60 * 60


@app.task
def send_password_reset(user_id):
    print(user_id)


@app.task(priority=9)  # expect: ERR702
def page_on_call(incident_id):
    print(incident_id)


@app.task(soft_time_limit=HOUR - 60, time_limit=HOUR)
def export_account(account_id):  # expect: ERR701
    print(account_id)


@app.task(time_limit=1800)
def thumbnail_large(image_id):
    print(image_id)


@app.task(time_limit=4 * HOUR)
def nightly_rollup():
    print("rollup")


def escalate(incident_id):
    page_on_call.apply_async(args=(incident_id,), priority=5)  # expect: ERR702
