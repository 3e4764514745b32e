"""Which app or broker an operator command reads, and how it says so when it finds nothing.

The app comes from ``--app``, else ``ERRANDS_APP``, else ``[tool.errands] app`` in the nearest
pyproject.toml (`errands.loading.find_app_spec`). ``--broker-url`` or ``--namespace`` given on
the command line say where to read instead of a discovered app (with ``--app`` they are
refused: the app has its own). With none of these, the defaults: ``$ERRANDS_BROKER_URL`` (else
redis://localhost:6379/0), namespace ``errands``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import click

from errands.app import App
from errands.broker.urls import redact
from errands.errors import ConfigurationError
from errands.loading import ENV_APP, find_app_spec, load_app

__all__ = ["DEFAULT_NAMESPACE", "Target", "nothing_found", "resolve_target", "target", "target_app"]

F = TypeVar("F", bound=Callable[..., Any])

#: The namespace read when no app and no ``--namespace`` say another.
DEFAULT_NAMESPACE = "errands"

_POINT_AT_APP = (
    f"if your app uses another, name it with --app package.module:app, "
    f'{ENV_APP}=package.module:app, or app = "package.module:app" under [tool.errands] in '
    "pyproject.toml"
)


class Target(NamedTuple):
    """The app a command reads, and how it was chosen.

    Attributes:
        app: the app (imported, or built from a URL and namespace).
        source: how it was chosen, as messages show it (``app shop.tasks:app from
            ERRANDS_APP``, ``--broker-url/--namespace``, ``the defaults``).
        discovered: an app was named (``--app``, ``ERRANDS_APP`` or pyproject.toml).
    """

    app: App
    source: str
    discovered: bool

    def where(self) -> str:
        """``namespace 'shop' at redis://host:6379/0 (app shop.tasks:app from ERRANDS_APP)``."""
        url = redact(self.app.broker_url)
        return f"namespace {self.app.namespace!r} at {url} ({self.source})"

    def header(self) -> dict[str, str]:
        """What a ``--json`` document says it read: ``broker`` (no password), ``namespace``."""
        return {"broker": redact(self.app.broker_url), "namespace": self.app.namespace}


def target(function: F) -> F:
    """The options that say which app or broker an inspection command talks to."""
    function = click.option(
        "--namespace",
        default=None,
        help=f"Key namespace to read (default: the app's, else {DEFAULT_NAMESPACE!r}).",
    )(function)
    function = click.option(
        "--broker-url",
        help="Redis URL to read (default: the app's, else $ERRANDS_BROKER_URL, else "
        "redis://localhost:6379/0).",
    )(function)
    return click.option(
        "--app",
        "app_spec",
        help=f"The app (package.module:app); default: ${ENV_APP}, else [tool.errands] app in "
        "pyproject.toml.",
    )(function)


def resolve_target(app_spec: str | None, broker_url: str | None, namespace: str | None) -> Target:
    """The app a command reads, and how it was chosen (see the module's docstring)."""
    explicit = broker_url is not None or namespace is not None
    if app_spec:
        if explicit:
            raise ConfigurationError(
                "--app names an app, which has its own broker and namespace: give --app, or "
                "--broker-url/--namespace, not both"
            )
        return Target(load_app(app_spec), f"app {app_spec} from --app", True)
    if explicit:
        app = App(broker_url, namespace=namespace or DEFAULT_NAMESPACE)
        return Target(app, "--broker-url/--namespace", False)
    found = find_app_spec()
    if found is not None:
        try:
            app = load_app(found.spec, found.root)
        except ConfigurationError as error:
            # Say where the name came from: the operator did not type it on this command.
            raise ConfigurationError(f"the app {found.source} names: {error}") from None
        return Target(app, f"app {found.spec} from {found.source}", True)
    return Target(App(namespace=DEFAULT_NAMESPACE), "no app named: the defaults", False)


def target_app(app_spec: str | None, broker_url: str | None, namespace: str | None) -> App:
    """The app an inspection command reads: imported, or built from a URL and namespace."""
    return resolve_target(app_spec, broker_url, namespace).app


def nothing_found(chosen: Target, what: str) -> str:
    """What a command that found nothing says: `what`, where it read, and how to read elsewhere.

    Args:
        chosen: what the command read.
        what: what it did not find (``no queues``).
    """
    if chosen.discovered:
        return f"{what} in {chosen.where()}; to read another app, use --app or {ENV_APP}"
    return f"{what} in {chosen.where()}; {_POINT_AT_APP}"
