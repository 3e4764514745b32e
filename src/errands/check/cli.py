"""The ``errands check`` command: scan, print in the chosen format, exit 0, 1 or 2.

Exit codes: 0 when nothing was found, 1 when something was, 2 on bad usage (an unknown rule, a
path that does not exist), as ruff does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from errands.check import UnknownRuleError, check_paths, get_rule
from errands.check.report import FORMATS, render

__all__ = ["check_command"]


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=True, path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text (file:line:col: CODE message), json, or sarif for code-scanning tools.",
)
@click.option(
    "--select",
    multiple=True,
    metavar="RULE",
    help="Run only these rules: codes (ERR301), prefixes (ERR3), names or families; "
    "repeat or separate with commas.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="RULE",
    help="Do not run these rules (same forms as --select).",
)
@click.option("--explain", metavar="CODE", help="Print what a rule checks and how to fix it.")
def check_command(
    paths: tuple[Path, ...],
    output_format: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    explain: str | None,
) -> None:
    """Report code that breaks the lessons, in errands and Celery tasks alike.

    Reads the Python source under PATHS (the current folder by default) without running it.
    Silence one line with `# errands: ignore[ERR301]`.
    """
    if explain is not None:
        try:
            click.echo(get_rule(explain).markdown(), nl=False)
        except UnknownRuleError as error:
            raise click.UsageError(str(error)) from None
        return
    try:
        report = check_paths(paths or (Path(),), select=select, ignore=ignore)
    except UnknownRuleError as error:
        raise click.UsageError(str(error)) from None
    click.echo(render(report, output_format), nl=False)
    if report.unparsable and output_format == "text":
        shown = ", ".join(report.unparsable[:5]) + (" ..." if len(report.unparsable) > 5 else "")
        click.echo(f"Skipped {len(report.unparsable)} file(s) that do not parse: {shown}", err=True)
    if report.findings:
        sys.exit(1)
