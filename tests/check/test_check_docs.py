"""The docs repeat the rules' own text, so ``--explain`` and the pages never disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from errands.check import RULES, Rule

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_page_is_the_explanation(rule: Rule) -> None:
    page = DOCS / "rules" / f"{rule.code}.md"
    assert page.read_text() == rule.markdown(), (
        f"regenerate it: python -m errands.check --explain {rule.code} > {page}"
    )


def test_overview_lists_every_rule() -> None:
    overview = (DOCS / "check.md").read_text()
    for rule in RULES:
        assert f"[{rule.code}](rules/{rule.code}.md) | `{rule.name}`" in overview


def test_codes_are_unique_and_grouped_by_family() -> None:
    codes = [rule.code for rule in RULES]
    assert len(set(codes)) == len(codes)
    assert codes == sorted(codes)
    digits = {
        "broker": "1",
        "arguments": "2",
        "waiting": "3",
        "retries": "4",
        "time limits": "5",
        "bind": "6",
        "queues": "7",
        "idempotency": "8",
        "periodic": "9",
    }
    for rule in RULES:
        assert rule.code[3] == digits[rule.family], rule.code
