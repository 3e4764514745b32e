"""``errands check``: a static analyser for the lessons errands makes the defaults.

It reads a project's source (never runs it) and reports every place that breaks one of the
lessons, for errands tasks and for Celery tasks alike::

    from errands.check import check_paths

    report = check_paths(["src/"], select=["ERR3"])
    for finding in report.findings:
        print(finding.path, finding.line, finding.code, finding.message)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from errands.check.context import Context
from errands.check.discovery import build_project
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.rules import CHECKS, RULES, UnknownRuleError, get_rule, select_codes
from errands.check.source import load_sources

__all__ = [
    "RULES",
    "CheckReport",
    "Finding",
    "Framework",
    "Rule",
    "Severity",
    "UnknownRuleError",
    "check_paths",
    "get_rule",
]


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The outcome of one scan.

    Attributes:
        findings: what was found, sorted by path, line, column and code.
        files: files looked at (Python modules and deployment files).
        modules: Python modules parsed (the others mention nothing the rules look at).
        tasks: tasks found, Celery and errands.
        unparsable: modules skipped because they do not parse (Python 2, templates).
        seconds: wall time of the scan.
    """

    findings: list[Finding]
    files: int
    modules: int
    tasks: int
    unparsable: list[str]
    seconds: float


def check_paths(
    paths: Iterable[str | Path],
    *,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    cwd: Path | None = None,
) -> CheckReport:
    """Scan `paths` (files or directories) and return what breaks the selected rules.

    Args:
        paths: where to look; directories are walked, hidden folders and virtualenvs skipped.
        select: rule codes, prefixes, names or families to run (all when empty).
        ignore: rule codes, prefixes, names or families not to run.
        cwd: paths in findings are shown relative to this folder (the current one by default).

    Raises:
        UnknownRuleError: a selector matches no rule.
    """
    started = time.perf_counter()
    codes = select_codes(select, ignore)
    base = (cwd or Path.cwd()).resolve()
    with _no_gc():
        sources = load_sources([Path(p) for p in paths], base)
        project = build_project(sources)
        context = Context.build(project)
        findings = [finding for check in CHECKS for finding in check(context)]
    by_path = {module.display: module for module in project.modules}
    deploy_text = {(line.display, line.line): line.text for line in project.deploy_lines}
    found: set[Finding] = set()
    for finding in findings:
        if finding.code not in codes:
            continue
        module = by_path.get(finding.path)
        if module is not None and module.ignored(finding.line, finding.code):
            continue
        if _deploy_ignored(deploy_text.get((finding.path, finding.line), ""), finding.code):
            continue
        found.add(finding)
    return CheckReport(
        findings=sorted(found),
        files=sources.files_seen,
        modules=len(project.modules),
        tasks=len(project.tasks),
        unparsable=sources.syntax_errors,
        seconds=time.perf_counter() - started,
    )


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while syntax trees pile up.

    Every parsed tree stays alive until the rules have run; with the collector on, each new
    allocation burst makes it traverse all of them again, a cost that grows with the project
    (docs/performance.md). Syntax trees hold no reference cycles, so nothing is lost.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _deploy_ignored(text: str, code: str) -> bool:
    marker = text.find("errands: ignore")
    if marker < 0:
        return False
    rest = text[marker + len("errands: ignore") :]
    if not rest.startswith("["):
        return True
    codes = rest[1 : rest.find("]")].replace(" ", "").upper().split(",")
    return any(code.startswith(c) for c in codes if c)
