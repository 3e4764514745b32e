"""The ``errands check`` command as a user runs it: output formats, rule selection, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from errands.check.cli import check_command

from .expectations import CORPUS

WAITING = CORPUS / "waiting" / "reports_celery_wait"
CLEAN = CORPUS / "waiting" / "reports_celery_chain"
ARGUMENTS = CORPUS / "arguments" / "shop_celery_args"


def run(*args: str) -> Result:
    return CliRunner().invoke(check_command, list(args))


def test_clean_project_exits_0_and_says_so() -> None:
    result = run(str(CLEAN))
    assert result.exit_code == 0, result.output
    assert "All checks passed!" in result.output


def test_findings_exit_1_in_ruff_style() -> None:
    result = run(str(WAITING))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    first = next(line for line in lines if "ERR301" in line)
    location, _, message = first.partition(": ERR301 ")
    path, line, column = location.rsplit(":", 2)
    assert path.endswith("reports_celery_wait/tasks.py")
    assert line.isdigit()
    assert column.isdigit()
    assert "build_report" in message
    assert lines[lines.index(first) + 1].startswith("  fix: ")
    assert "ERR302 poll-inside-task: 1" in result.output


def test_json_lists_every_finding_with_its_location() -> None:
    result = run(str(WAITING), "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.output)
    assert {f["code"] for f in findings} == {"ERR301", "ERR302"}
    export = next(f for f in findings if f["code"] == "ERR302")
    assert export["path"].endswith("tasks.py")
    assert export["severity"] == "error"
    assert export["name"] == "poll-inside-task"
    assert export["line"] > 0
    assert export["column"] > 0
    assert export["fix"]


def test_sarif_is_a_2_1_0_log_with_rules_and_results() -> None:
    result = run(str(WAITING), "--format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.output)
    assert log["version"] == "2.1.0"
    run_ = log["runs"][0]
    rule_ids = [rule["id"] for rule in run_["tool"]["driver"]["rules"]]
    assert "ERR301" in rule_ids
    for item in run_["results"]:
        assert rule_ids[item["ruleIndex"]] == item["ruleId"]
        region = item["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] > 0


def test_select_keeps_only_the_chosen_rules() -> None:
    result = run(str(WAITING), "--format", "json", "--select", "ERR302")
    assert {f["code"] for f in json.loads(result.output)} == {"ERR302"}


def test_select_accepts_prefixes_names_families_and_commas() -> None:
    for selector in ("ERR3", "waiting", "wait-inside-task,poll-inside-task"):
        result = run(str(WAITING), "--format", "json", "--select", selector)
        assert {f["code"] for f in json.loads(result.output)} <= {"ERR301", "ERR302"}
        assert result.exit_code == 1


def test_ignore_removes_rules_and_can_make_the_run_clean() -> None:
    result = run(str(WAITING), "--ignore", "ERR3")
    assert result.exit_code == 0, result.output
    result = run(str(ARGUMENTS), "--format", "json", "--select", "ERR2", "--ignore", "ERR202")
    assert {f["code"] for f in json.loads(result.output)} == {"ERR201"}


def test_unknown_rule_is_a_usage_error() -> None:
    result = run(str(WAITING), "--select", "ERR999")
    assert result.exit_code == 2
    assert "unknown rule 'ERR999'" in result.output


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope"))
    assert result.exit_code == 2


def test_unknown_format_is_a_usage_error() -> None:
    assert run(str(WAITING), "--format", "xml").exit_code == 2


def test_explain_prints_the_rule_page() -> None:
    result = run("--explain", "ERR301")
    assert result.exit_code == 0
    assert result.output.startswith("# ERR301 `wait-inside-task`")
    assert "## Flagged" in result.output
    assert "## Instead" in result.output
    assert run("--explain", "wait-inside-task").output == result.output


def test_explain_unknown_code_is_a_usage_error() -> None:
    result = run("--explain", "ERR000")
    assert result.exit_code == 2


def test_default_path_is_the_current_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(WAITING)
    result = run("--format", "json")
    assert result.exit_code == 1
    assert {f["path"] for f in json.loads(result.output)} == {"tasks.py"}


def test_unparsable_files_are_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "legacy_tasks.py").write_text('print "celery task"\n')
    result = run(str(tmp_path))
    assert result.exit_code == 0
    assert "Skipped 1 file(s) that do not parse" in result.output


def test_runs_as_a_module() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "errands.check", str(CLEAN)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "All checks passed!" in completed.stdout
