"""An app with the `Metrics` middleware, for the worker's count of the chain steps it enqueues.

A worker imports ``tests.integration.metrics_app:app``, built on first access from
``ERRANDS_BROKER_URL`` and ``ERRANDS_TEST_NAMESPACE``; a test builds its own with `build` (and
a registry of its own) to send the jobs.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry

from errands import App
from errands.observe.metrics import Metrics
from tests.integration.lazy_app import lazy_app

__all__ = ["build"]


def build(broker_url: str, namespace: str, registry: CollectorRegistry = REGISTRY) -> App:
    """The app, its enqueues counted into `registry`."""
    app = App(broker_url, namespace=namespace, lease=2.0, middleware=[Metrics(registry)])

    @app.task(name="step", soft_time_limit=5, time_limit=10)
    def step(n: int) -> int:
        return n + 1

    return app


def _from_environment() -> App:
    return build(os.environ["ERRANDS_BROKER_URL"], os.environ["ERRANDS_TEST_NAMESPACE"])


__getattr__ = lazy_app(__name__, _from_environment)
