"""Writing a `CheckReport` as text (ruff's style), JSON, or SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from errands.check import CheckReport
from errands.check.model import Finding, Severity
from errands.check.rules import RULES, get_rule

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "sarif")
"""The output formats `render` knows."""

_DOCS = "https://github.com/errands/errands/blob/main/docs/rules/{code}.md"
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(report: CheckReport, output_format: str) -> str:
    """`report` in `output_format` ("text", "json" or "sarif"), ending with a newline."""
    if output_format == "json":
        return json.dumps([_as_dict(f) for f in report.findings], indent=2) + "\n"
    if output_format == "sarif":
        return json.dumps(_sarif(report), indent=2) + "\n"
    return _text(report)


def _as_dict(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "name": get_rule(finding.code).name,
        "severity": finding.severity.value,
        "message": finding.message,
        "fix": finding.fix,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
    }


def _text(report: CheckReport) -> str:
    lines: list[str] = []
    for finding in report.findings:
        lines.append(
            f"{finding.path}:{finding.line}:{finding.column}: {finding.code} {finding.message}"
        )
        lines.append(f"  fix: {finding.fix}")
    scanned = f"{report.files} files, {report.tasks} tasks, {report.seconds:.2f} s"
    if not report.findings:
        lines.append(f"All checks passed! ({scanned})")
        return "\n".join(lines) + "\n"
    warnings = sum(1 for f in report.findings if f.severity is Severity.WARNING)
    errors = len(report.findings) - warnings
    if lines:
        lines.append("")
    lines.append(
        f"Found {len(report.findings)} problem(s): {errors} error(s), {warnings} warning(s) "
        f"({scanned})."
    )
    counts = Counter(f.code for f in report.findings)
    for code, count in sorted(counts.items()):
        lines.append(f"  {code} {get_rule(code).name}: {count}")
    lines.append("Run `errands check --explain CODE` for what a rule means and how to fix it.")
    return "\n".join(lines) + "\n"


def _sarif(report: CheckReport) -> dict[str, Any]:
    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": " ".join(rule.why.split())},
            "help": {"text": rule.fix, "markdown": rule.markdown()},
            "helpUri": _DOCS.format(code=rule.code),
            "defaultConfiguration": {"level": _level(rule.severity)},
            "properties": {"tags": [rule.family]},
        }
        for rule in RULES
    ]
    index = {rule.code: i for i, rule in enumerate(RULES)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": _level(f.severity),
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        for f in report.findings
    ]
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "errands check",
                        "informationUri": _DOCS.format(code="../check").replace(
                            "/rules/../check.md", "/check.md"
                        ),
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"
