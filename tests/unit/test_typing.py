"""mypy catches a wrong call of a task before it runs: arguments, results, a bound task's context.

Two mypy runs: one on typing_cases.py (code that must pass), one on a file of misuses, each line
of which names the error codes mypy must report there (``# expect: <code>, ...``).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]

MISUSES = textwrap.dedent(
    """\
    from errands import App, TaskContext

    app = App("redis://127.0.0.1:1/0")


    @app.task
    def add(x: int, y: int) -> int:
        return x + y


    @app.task(bind=True)
    def bound(ctx: TaskContext, user_id: int) -> str:
        return f"{ctx.id}:{user_id}"


    def misuse(ctx: TaskContext) -> None:
        add.delay("1", 2)  # expect: arg-type
        add.delay(1)  # expect: call-arg
        add.delay(1, 2, 3)  # expect: call-arg
        add.delay(1, z=2)  # expect: call-arg
        add.s(1, "2")  # expect: arg-type
        text: str = add.delay(1, 2).get()  # expect: assignment
        flag: bool = bound.delay(1).get()  # expect: assignment
        bound.delay(ctx, 42)  # expect: call-arg, arg-type
        bound.s(ctx, 42)  # expect: call-arg, arg-type
        bound.delay("42")  # expect: arg-type
    """
)

_ERROR = re.compile(r":(?P<line>\d+): error: .*  \[(?P<code>[\w-]+)\]$")


def run_mypy(path: Path) -> tuple[dict[int, set[str]], str]:
    """mypy --strict with the project's settings: the error codes by line, and the report."""
    stdout, stderr, _ = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            str(path),
        ]
    )
    assert not stderr, stderr
    codes: dict[int, set[str]] = {}
    for line in stdout.splitlines():
        if ": note: " in line:
            continue
        found = _ERROR.search(line)
        assert found is not None, f"unexpected mypy output: {line}"
        codes.setdefault(int(found["line"]), set()).add(found["code"])
    return codes, stdout


def test_the_typing_cases_pass_mypy_strict() -> None:
    codes, report = run_mypy(ROOT / "tests" / "unit" / "typing_cases.py")
    assert codes == {}, report


def test_each_misuse_of_a_task_is_reported_with_its_error_codes(tmp_path: Path) -> None:
    path = tmp_path / "misuses.py"
    path.write_text(MISUSES, encoding="utf-8")
    expected = {
        number: set(found.group(1).split(", "))
        for number, text in enumerate(MISUSES.splitlines(), start=1)
        if (found := re.search(r"# expect: ([\w, -]+)$", text))
    }
    assert len(expected) == 10
    codes, report = run_mypy(path)
    assert codes == expected, report
