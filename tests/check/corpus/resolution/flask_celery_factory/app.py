# ruff: noqa
# mypy: ignore-errors
from flask import Flask
from huey import RedisHuey

from .factory import make_celery

flask_app = Flask(__name__)
flask_app.config["CELERY_BROKER_URL"] = "redis://redis:6379/0"
celery = make_celery(flask_app)
huey = RedisHuey("thumbnails")


@celery.task(autoretry_for=(IOError,), soft_time_limit=20, time_limit=30)  # expect: ERR403
def resize(upload_id):
    print(upload_id)


@huey.task(retries=3)
def crop(upload_id):
    # A huey task: none of the Celery rules (time limits, acks) apply to it.
    print(upload_id)
