# ruff: noqa
# mypy: ignore-errors
SECRET_KEY = "dev"
INSTALLED_APPS = ["django.contrib.contenttypes", "kombu.transport.django", "bakery_djangodb"]

CELERY_BROKER_URL = "django://"  # expect: ERR101
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 120
