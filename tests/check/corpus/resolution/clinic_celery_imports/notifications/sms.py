# ruff: noqa
# mypy: ignore-errors
from ..worker.app import celery_app as capp


@capp.task(queue="sms")
def notify_patient(patient_id, message):
    print(patient_id, message)
