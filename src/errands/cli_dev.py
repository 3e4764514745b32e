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
from pathlib import Path
from typing import TYPE_CHECKING

import click

from errands.errors import ConfigurationError

if TYPE_CHECKING:
    from watchfiles.main import FileChange

__all__ = ["GRACE_S", "run_with_reload"]

#: Seconds a restarted worker has to finish its jobs (its --grace-period), before they go back.
GRACE_S = 3
#: Seconds the reloader waits for it to stop after the signal, then kills it.
STOP_WAIT_S = GRACE_S + 5


def run_with_reload(app_spec: str, queues: str | None, concurrency: int, log_level: str) -> int:
    """Run ``errands worker APP`` and restart it on every change of a .py file; returns reloads.

    Returns when the reloader is stopped (Ctrl-C or SIGTERM), after stopping the worker.
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
