"""Finding a user's app: from a ``module:attribute`` string, and which string to use.

`load_app` imports the app a spec names, as the CLI and the worker's children do.
`find_app_spec` says which spec the operator commands use when none is given on the command
line: ``ERRANDS_APP``, else ``app`` under ``[tool.errands]`` in the nearest pyproject.toml
that has that table (the current directory, then its parents).
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from errands.app import App
from errands.errors import ConfigurationError

__all__ = ["ENV_APP", "FoundApp", "find_app_spec", "load_app"]

#: The environment variable that names the app of the operator commands.
ENV_APP = "ERRANDS_APP"


class FoundApp(NamedTuple):
    """An app spec found without ``--app``, and where it was found.

    Attributes:
        spec: ``package.module:app``.
        source: where it came from, as messages show it (``ERRANDS_APP`` or
            ``[tool.errands] in /path/pyproject.toml``).
        root: the folder its module is imported from (the pyproject's folder; None: the
            current directory).
    """

    spec: str
    source: str
    root: Path | None = None


def find_app_spec(
    start: Path | None = None, environ: Mapping[str, str] | None = None
) -> FoundApp | None:
    """The app spec the environment or the nearest pyproject.toml names; None when neither does.

    Args:
        start: the folder the search for pyproject.toml starts from (default: the current one).
        environ: the environment (default: ``os.environ``).

    Raises:
        ConfigurationError: a pyproject.toml on the way does not parse, or its
            ``[tool.errands] app`` is not a ``module:app`` string.
    """
    env = os.environ if environ is None else environ
    named = env.get(ENV_APP, "").strip()
    if named:
        return FoundApp(named, ENV_APP)
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            with path.open("rb") as file:
                settings = tomllib.load(file).get("tool", {}).get("errands")
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigurationError(
                f"cannot read {path} ({error}): fix it, or name the app with --app or {ENV_APP}"
            ) from None
        if not isinstance(settings, dict):
            continue  # the nearest project that says nothing of errands: look further up
        app = settings.get("app")
        if app is None:
            return None
        if not isinstance(app, str) or ":" not in app:
            raise ConfigurationError(
                f'[tool.errands] app in {path} is {app!r}: write it as app = "package.module:app"'
            )
        return FoundApp(app.strip(), f"[tool.errands] in {path}", candidate)
    return None


def load_app(spec: str, root: Path | None = None) -> App:
    """Import ``package.module:app`` (or ``package.module``, if it holds exactly one App).

    `root` (default: the current directory) is put on ``sys.path`` first, as ``python -m``
    would with the current directory.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise ConfigurationError(f"{spec!r} names no module: write it as package.module:app")
    folder = str(root or Path.cwd())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise ConfigurationError(
                f"cannot import {module_name!r} ({error}): run from the folder that contains it, "
                "or install your package"
            ) from None
        raise
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, App):
            raise ConfigurationError(
                f"{module_name}.{attribute} is not an errands App "
                f"({type(found).__name__ if found is not None else 'missing'})"
            )
        return found
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if len(apps) != 1:
        raise ConfigurationError(
            f"{module_name} holds {len(apps)} errands Apps: name one, as {module_name}:app"
        )
    return apps[0]
