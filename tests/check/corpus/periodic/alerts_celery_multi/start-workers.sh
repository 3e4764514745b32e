#!/bin/sh
set -e
# Three nodes, and each of them embeds a beat scheduler.
celery multi start 3 -A alerts_celery_multi -B --pidfile=/run/celery/%n.pid  # expect: ERR901
