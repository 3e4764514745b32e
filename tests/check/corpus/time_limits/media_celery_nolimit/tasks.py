# ruff: noqa
# mypy: ignore-errors
from celery import shared_task

from .celery import app
from .ffmpeg import transcode


@app.task  # the decorator line is not where the finding goes
def generate_thumbnails(image_id):  # expect: ERR501
    print(image_id)


@shared_task(time_limit=None)
def transcode_video(video_id):  # expect: ERR501
    transcode(video_id)


@app.task(soft_time_limit=30)
def probe(video_id):
    print(video_id)
