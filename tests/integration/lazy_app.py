"""The ``app`` of a test app module, built from the worker's environment on first access.

A worker imports ``module:app`` in a process whose environment names the broker and namespace;
a test imports the same module only to call its ``build``. `lazy_app` gives such a module a
``__getattr__`` that builds ``app`` once, when first asked for, so importing stays free.
"""

from __future__ import annotations

from collections.abc import Callable

from errands import App

__all__ = ["lazy_app"]


def lazy_app(module: str, build: Callable[[], App]) -> Callable[[str], App]:
    """A module ``__getattr__`` for `module` whose only attribute, ``app``, `build` makes once."""
    built: list[App] = []

    def module_getattr(name: str) -> App:
        if name != "app":
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if not built:
            built.append(build())
        return built[0]

    return module_getattr
