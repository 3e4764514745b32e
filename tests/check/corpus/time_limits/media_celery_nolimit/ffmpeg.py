# ruff: noqa
# mypy: ignore-errors
import subprocess


def transcode(video_id):
    subprocess.run(["ffmpeg", "-i", f"{video_id}.mov", f"{video_id}.mp4"], check=True)
