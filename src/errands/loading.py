"""Finding a user's app from a ``module:attribute`` string, as the CLI and the children do."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from errands.app import App
from errands.errors import ConfigurationError

__all__ = ["load_app"]


def load_app(spec: str) -> App:
    """Import ``package.module:app`` (or ``package.module``, if it holds exactly one App).

    The current directory is put on ``sys.path`` first, as ``python -m`` would.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise ConfigurationError(f"{spec!r} names no module: write it as package.module:app")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
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
