"""An app with limiters for ``errands limits``, built from the test's environment.

``partner``: 10 starts a second, bursts of 2, 3 at once; ``per-tenant``: one start a minute per
tenant (the task's first argument).
"""

from __future__ import annotations

from errands import App
from tests.e2e.env_app import app_attribute

__all__ = ["build"]


def build(broker_url: str, namespace: str) -> App:
    """The app on `broker_url` and `namespace`."""
    app = App(broker_url, namespace=namespace)
    app.limiter("partner", rate="10/s", burst=2, concurrency=3)
    app.limiter("per-tenant", rate="1/m", key=lambda tenant: tenant)

    @app.task(name="sync", limits=["partner"])
    def sync(n: int) -> int:
        return n

    @app.task(name="bill", limits=["per-tenant"])
    def bill(tenant: str) -> str:
        return tenant

    return app


def __getattr__(name: str) -> App:
    """``app``: built anew from the environment each time (each test names its own namespace)."""
    return app_attribute(__name__, name, build)
