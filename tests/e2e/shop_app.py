"""An app with its own namespace for the operator commands, built from the test's environment.

``mail.send`` (queue ``emails``) fails for good at once; ``mail.digest`` (queue ``emails``) is
limited by ``mailer`` (5 starts a second). ``ERRANDS_APP=tests.e2e.shop_app:app`` names it, with
``ERRANDS_BROKER_URL`` and ``ERRANDS_TEST_NAMESPACE`` saying where it lives.
"""

from __future__ import annotations

from errands import App
from tests.e2e.env_app import app_attribute

__all__ = ["SPEC", "build"]

#: What ERRANDS_APP (or --app) says to name this app.
SPEC = "tests.e2e.shop_app:app"


def build(broker_url: str, namespace: str) -> App:
    """The app on `broker_url` and `namespace`."""
    app = App(broker_url, namespace=namespace)
    app.limiter("mailer", rate="5/s")

    @app.task(name="mail.send", queue="emails", max_retries=0)
    def send(to: str, subject: str = "") -> None:
        raise ConnectionRefusedError(f"smtp down for {to}")

    @app.task(name="mail.digest", queue="emails", limits=["mailer"])
    def digest(user: int) -> int:
        return user

    return app


def __getattr__(name: str) -> App:
    """``app``: built anew from the environment each time (each test names its own namespace)."""
    return app_attribute(__name__, name, build)
