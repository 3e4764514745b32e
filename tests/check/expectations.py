"""Reading the ``# expect: ERRxxx`` markers of the corpus, and scanning a corpus project."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from errands.check import CheckReport, check_paths

CORPUS = Path(__file__).parent / "corpus"
_MARKER = re.compile(r"expect:\s*((?:ERR\d{3}[\s,]*)+)")
_CODE = re.compile(r"ERR\d{3}")
_TEXT_SUFFIXES = {".py", ".yml", ".yaml", ".sh", ".service", ".conf", ".ini", ".toml"}

Key = tuple[str, int, str]


def projects() -> list[Path]:
    """Every corpus project: a folder under ``corpus/<family>/`` scanned on its own."""
    return sorted(
        p
        for family in CORPUS.iterdir()
        if family.is_dir()
        for p in family.iterdir()
        if p.is_dir() and not p.name.startswith("__")
    )


def _text_files(project: Path) -> list[Path]:
    return sorted(
        f
        for f in project.rglob("*")
        if f.is_file() and (f.suffix in _TEXT_SUFFIXES or f.name.startswith("Procfile"))
    )


def expected(project: Path) -> Counter[Key]:
    """(path relative to the project, line, code) for each ``expect:`` marker."""
    found: Counter[Key] = Counter()
    for file in _text_files(project):
        rel = file.relative_to(project).as_posix()
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            match = _MARKER.search(line)
            if match:
                for code in _CODE.findall(match.group(1)):
                    found[(rel, number, code)] += 1
    return found


def scan(project: Path) -> CheckReport:
    """Scan one corpus project, paths in findings relative to it."""
    return check_paths([project], cwd=project)


def actual(report: CheckReport) -> Counter[Key]:
    """(path, line, code) for each finding of `report`."""
    return Counter((f.path, f.line, f.code) for f in report.findings)
