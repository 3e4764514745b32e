"""The optional extras of errands: a clear error, naming what to install, when one is missing."""

from __future__ import annotations

import importlib

from errands.errors import ConfigurationError

__all__ = ["require"]


def require(module: str, feature: str, extra: str) -> None:
    """Import `module`, or raise a `ConfigurationError` saying to install ``errands[extra]``.

    Args:
        module: the module `feature` needs (``opentelemetry.trace``).
        feature: what needs it, as the message names it (``Tracing``).
        extra: the extra that installs it (``otel``).
    """
    try:
        importlib.import_module(module)
    except ImportError as missing:
        raise ConfigurationError(
            f"{feature} needs a package that is not installed ({missing}): "
            f"pip install 'errands[{extra}]'"
        ) from None
