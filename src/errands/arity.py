"""A fast check that a call's arguments fit a task's function, done at enqueue time.

It runs on every enqueue, so it must cost a small part of an enqueue's client time, which
`inspect.Signature.bind` does not; a function compiled with the same parameters and an empty body
lets the interpreter make the same check, with Python's own error messages ("missing 1 required
positional argument: 'subject'"). The measurements: docs/performance.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["arity_checker"]


def _parameter_list(parameters: list[inspect.Parameter]) -> str:
    parts: list[str] = []
    kinds = inspect.Parameter
    star_written = False
    for index, parameter in enumerate(parameters):
        default = "=_d" if parameter.default is not kinds.empty else ""
        if parameter.kind is kinds.VAR_POSITIONAL:
            parts.append(f"*{parameter.name}")
            star_written = True
        elif parameter.kind is kinds.VAR_KEYWORD:
            parts.append(f"**{parameter.name}")
        elif parameter.kind is kinds.KEYWORD_ONLY:
            if not star_written:
                parts.append("*")
                star_written = True
            parts.append(parameter.name + default)
        else:
            parts.append(parameter.name + default)
        following = parameters[index + 1] if index + 1 < len(parameters) else None
        if parameter.kind is kinds.POSITIONAL_ONLY and (
            following is None or following.kind is not kinds.POSITIONAL_ONLY
        ):
            parts.append("/")
    return ", ".join(parts)


def arity_checker(fn: Callable[..., Any], *, skip_first: bool = False) -> Callable[..., None]:
    """A function that raises `TypeError` exactly when ``fn(*args, **kwargs)`` would not bind.

    Args:
        fn: the task's function.
        skip_first: leave out the first parameter (a bound task's context).
    """
    parameters = list(inspect.signature(fn).parameters.values())[1 if skip_first else 0 :]
    name = fn.__name__ if fn.__name__.isidentifier() else "task"
    source = f"def {name}({_parameter_list(parameters)}):\n    return None\n"
    namespace: dict[str, Any] = {"_d": None}
    exec(compile(source, f"<errands arity check of {name}>", "exec"), namespace)  # noqa: S102 - only parameter names from inspect, no user text
    checker: Callable[..., None] = namespace[name]
    return checker
