"""``errands dev APP --reload``: a worker restarted whenever a .py file here changes.

It watches the current directory with watchfiles (the ``errands[reload]`` extra).

The worker runs as ``errands worker`` in a child process, so each restart imports the code
afresh; the local server (`errands.embedded`) stays up across restarts, with its data. A
restart stops the child by its pid as a signal does (it finishes or gives back its jobs within
a short grace period), and kills it if it has not stopped in time.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from errands.errors import ConfigurationError

if TYPE_CHECKING:
    from watchfiles.main import FileChange

__all__ = ["GRACE_S", "STOP_WAIT_S", "reloader"]

#: Seconds a restarted worker has to finish its jobs (its --grace-period), before they go back.
GRACE_S = 3
#: Seconds the reloader waits for it to stop after the signal, then kills it.
STOP_WAIT_S = GRACE_S + 5


def reloader(
    app_spec: str, queues: str | None, concurrency: int, log_level: str
) -> Callable[[], int]:
    """What runs ``errands worker APP`` and restarts it on every change of a .py file here.

    The callable returns (the number of restarts) when the reloader is stopped by Ctrl-C or
    SIGTERM, after stopping the worker.

    Raises:
        ConfigurationError: watchfiles is not installed (the ``errands[reload]`` extra).
    """
    try:
        import watchfiles  # noqa: PLC0415 - the reload extra, only with --reload
    except ImportError:
        raise ConfigurationError(
            "errands dev --reload needs watchfiles: pip install 'errands[reload]'"
        ) from None
    command = [sys.executable, "-m", "errands", "worker", app_spec, "-c", str(concurrency)]
    command += ["--grace-period", str(GRACE_S), "--log-level", log_level]
    if queues:
        command += ["-Q", queues]
    here = str(Path.cwd())

    def changed(changes: set[FileChange]) -> None:
        paths = sorted({os.path.relpath(path, here) for _, path in changes})
        click.echo(f"reloading: {', '.join(paths)} changed", err=True)

    def run() -> int:
        click.echo(f"watching {here} for changes of .py files", err=True)
        return watchfiles.run_process(
            here,
            target=shlex.join(command),
            target_type="command",
            callback=changed,
            watch_filter=watchfiles.PythonFilter(),
            sigint_timeout=STOP_WAIT_S,
            sigkill_timeout=2,
        )

    return run
