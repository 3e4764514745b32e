# ruff: noqa
# mypy: ignore-errors
from datetime import datetime

import clinic_celery_imports.notifications.sms as sms
from clinic_celery_imports.notifications import notify_patient as notify

from . import housekeeping
from .models import Patient


def remind(request, pk):
    patient = Patient.objects.get(pk=pk)
    notify.delay(patient, "Your appointment is tomorrow")  # expect: ERR201
    sms.notify_patient.delay(patient, "Reminder")  # expect: ERR201
    housekeeping.purge_sessions.delay(datetime.now())  # expect: ERR201


def remind_later(request, pk):
    from .notifications.sms import notify_patient as later

    patient = Patient.objects.get(pk=pk)
    later.apply_async(args=(patient, "Soon"), countdown=60)  # expect: ERR201


def silenced(request, pk):
    patient = Patient.objects.get(pk=pk)
    notify.delay(patient, "a")  # errands: ignore[ERR201]
    notify.delay(patient, "b")  # errands: ignore
    notify.delay(patient, "c")  # errands: ignore[ERR301]  # expect: ERR201
