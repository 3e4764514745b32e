"""The records every part of the checker shares: rules, findings, severities, frameworks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Finding", "Framework", "Rule", "Severity"]


class Severity(StrEnum):
    """How sure the checker is that a finding is a problem."""

    ERROR = "error"
    """The code breaks a lesson as written."""
    WARNING = "warning"
    """The code probably breaks a lesson; a person should look."""


class Framework(StrEnum):
    """The task framework a task, an app or a setting belongs to."""

    CELERY = "celery"
    ERRANDS = "errands"


@dataclass(frozen=True, slots=True)
class Rule:
    """One lesson the checker enforces, with everything `--explain` and the docs print.

    Attributes:
        code: the stable code, ``ERR`` then the family digit then two digits (``ERR301``).
        name: a short kebab-case name (``wait-inside-task``).
        family: the family the code belongs to (``waiting``).
        summary: one line saying what is flagged.
        fix: one line saying what to do instead (findings may give a more precise one).
        severity: error or warning.
        frameworks: the frameworks the rule can fire for.
        why: a paragraph on what goes wrong in production.
        bad: a short example the rule flags.
        good: the same example written the safe way.
    """

    code: str
    name: str
    family: str
    summary: str
    fix: str
    severity: Severity
    frameworks: frozenset[Framework]
    why: str
    bad: str
    good: str
    notes: tuple[str, ...] = field(default=())

    def markdown(self) -> str:
        """The rule's explanation as Markdown: what `--explain` prints and its docs page holds."""
        names = {Framework.CELERY: "Celery", Framework.ERRANDS: "errands"}
        applies = " and ".join(names[f] for f in Framework if f in self.frameworks)
        parts = [
            f"# {self.code} `{self.name}`",
            "",
            f"**Family:** {self.family} · **Severity:** {self.severity.value} · "
            f"**Applies to:** {applies} tasks",
            "",
            self.summary,
            "",
            "## Why",
            "",
            self.why.strip(),
            "",
            "## Flagged",
            "",
            "```python",
            self.bad.strip("\n"),
            "```",
            "",
            "## Instead",
            "",
            "```python",
            self.good.strip("\n"),
            "```",
            "",
            f"**Fix:** {self.fix}",
        ]
        if self.notes:
            parts += ["", "## Notes", ""]
            parts += [f"- {note}" for note in self.notes]
        parts += [
            "",
            f"Silence one line with `# errands: ignore[{self.code}]`.",
            "",
        ]
        return "\n".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One place in the scanned source that breaks a rule.

    Attributes:
        path: the file, as displayed (relative to the working directory when inside it).
        line: 1-based line number.
        column: 1-based column number.
        code: the rule code.
        message: what is wrong at this place.
        fix: one line saying what to do.
        severity: the rule's severity.
    """

    path: str
    line: int
    column: int
    code: str
    message: str
    fix: str
    severity: Severity
