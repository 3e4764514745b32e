"""Every corpus project is reported exactly where its ``# expect:`` markers say, and nowhere else.

Each folder under ``corpus/<family>/`` is a small project, Celery or errands, written the way
such projects are; a marker ``# expect: ERR301`` on a line means that rule must be reported on
that line. A project with no marker is the clean version: it must produce no finding at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from errands.check import RULES, Framework

from .expectations import CORPUS, actual, expected, projects, scan

PROJECTS = projects()


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_findings_match_the_markers(project: Path) -> None:
    report = scan(project)
    want, got = expected(project), actual(report)
    missing = sorted((want - got).elements())
    unexpected = sorted((got - want).elements())
    details = [f"{f.path}:{f.line} {f.code} {f.message}" for f in report.findings]
    assert (missing, unexpected) == ([], []), "findings:\n" + "\n".join(details)


def _framework(project: Path) -> Framework:
    text = " ".join(f.read_text() for f in project.rglob("*.py"))
    return Framework.ERRANDS if "errands" in text else Framework.CELERY


def test_every_rule_has_flagged_and_clean_examples_for_each_framework() -> None:
    flagged: set[tuple[str, Framework]] = set()
    clean_families: set[tuple[str, Framework]] = set()
    for project in PROJECTS:
        framework = _framework(project)
        codes = {code for (_, _, code) in expected(project)}
        flagged |= {(code, framework) for code in codes}
        if not codes:
            clean_families.add((project.parent.name, framework))
    for rule in RULES:
        for framework in rule.frameworks:
            assert (rule.code, framework) in flagged, (
                f"no flagged {framework} example of {rule.code}"
            )
    families = {rule.family.replace(" ", "_") for rule in RULES}
    for family in families:
        for framework in Framework:
            assert (family, framework) in clean_families, (
                f"no clean {framework} project in {family}"
            )


def test_corpus_families_cover_every_rule_family() -> None:
    families = {p.parent.name for p in PROJECTS}
    rule_families = {rule.family.replace(" ", "_") for rule in RULES}
    assert rule_families <= families, rule_families - families
    assert CORPUS.is_dir()
