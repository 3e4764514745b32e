"""Periodic: one scheduler, one schedule (ERR9xx)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from errands.check.context import Context
from errands.check.discovery import app_of
from errands.check.evaluate import keyword, literal
from errands.check.model import Finding, Framework, Rule, Severity
from errands.check.project import Site, TaskDef
from errands.check.source import DeployLine, Module

__all__ = ["BEAT_WITHOUT_LOCK", "RULES", "SCHEDULE_TWICE", "check"]

BEAT_WITHOUT_LOCK = Rule(
    code="ERR901",
    name="beat-without-lock",
    family="periodic",
    summary="More than one Celery beat scheduler is started (two `celery beat`, `worker -B` "
    "beside beat, `celery multi ... -B`) and nothing locks the schedule.",
    fix="run exactly one beat process, or use a locking scheduler such as RedBeat",
    severity=Severity.ERROR,
    frameworks=frozenset({Framework.CELERY}),
    why="""
Celery beat has no leader election: every beat process fires every entry. Two of them (a
`worker -B` per worker, a beat per replica) send each periodic job twice: two nightly invoices,
two reminder emails. `django_celery_beat`'s DatabaseScheduler does not lock either. RedBeat
holds a lock in Redis; errands' scheduler holds a leader lease and keys every fire by its time,
so a second scheduler never fires twice.
""",
    bad="""
# Procfile
worker: celery -A shop worker -B --loglevel=info
beat: celery -A shop beat --loglevel=info                # ERR901
""",
    good="""
# Procfile
worker: celery -A shop worker --loglevel=info
beat: celery -A shop beat -S redbeat.RedBeatScheduler --loglevel=info
""",
    notes=(
        "Command lines are read from Procfiles, compose and YAML files, shell scripts, unit "
        "files and INI files of the tree; schedulers are counted per file, since separate "
        "files usually describe separate deployments. `celery multi start` with several "
        "nodes and `-B` counts as several schedulers.",
        "A lock is RedBeat (`redbeat`), `single-beat`, `celery_once` or `celery_singleton` "
        "anywhere in the tree.",
    ),
)

SCHEDULE_TWICE = Rule(
    code="ERR902",
    name="schedule-defined-twice",
    family="periodic",
    summary="A periodic schedule is defined in two places: the same task in two schedules, or "
    "`beat_schedule` set in two places where one replaces the other.",
    fix="define each schedule once, in one module",
    severity=Severity.ERROR,
    frameworks=frozenset(Framework),
    why="""
A task scheduled in `beat_schedule` and again with `add_periodic_task`, in a `PeriodicTask` row,
or by errands during a migration fires once per schedule. And when `app.conf.beat_schedule` and
`CELERY_BEAT_SCHEDULE` are both assigned, one silently replaces the other, so an entry someone
added never runs. One place per schedule makes both mistakes impossible.
""",
    bad="""
# settings.py
CELERY_BEAT_SCHEDULE = {
    "nightly-invoices": {"task": "billing.tasks.close_invoices", "schedule": crontab(0, 2)},
}

# billing/tasks.py
@app.on_after_configure.connect
def schedule(sender, **kwargs):
    sender.add_periodic_task(crontab(0, 2), close_invoices.s())   # ERR902
""",
    good="""
# settings.py
CELERY_BEAT_SCHEDULE = {
    "nightly-invoices": {"task": "billing.tasks.close_invoices", "schedule": crontab(0, 2)},
}
""",
    notes=(
        "Schedules are read from `beat_schedule` (every spelling), `add_periodic_task`, "
        "Celery's old `@periodic_task`, `django_celery_beat` `PeriodicTask` rows created in "
        "code, and errands apps' `periodic`/`schedule`/`cron`/`every` calls and decorators.",
        "Alternative settings modules (settings_dev.py, settings_prod.py) count as one place.",
    ),
)

RULES = (BEAT_WITHOUT_LOCK, SCHEDULE_TWICE)

_BEAT = re.compile(r"\bcelery\b.*\sbeat\b")
_EMBEDDED = re.compile(r"\bcelery\b.*\sworker\b.*\s(-B|--beat)\b")
_MULTI = re.compile(r"\bcelery\b.*\smulti\s+(start|restart)\s+(?P<nodes>.*?)\s(-B|--beat)\b")
_LOCK_MODULES = frozenset({"redbeat", "celery_redbeat", "celery_once", "celery_singleton"})
_ERRANDS_SCHEDULE = frozenset({"periodic", "schedule", "cron", "every", "add_periodic_task"})
_PERIODIC_MODELS = frozenset({"PeriodicTask"})


def check(ctx: Context) -> Iterator[Finding]:
    """Report unlocked second beat schedulers and schedules defined twice."""
    yield from _beats(ctx)
    yield from _schedules(ctx)


# ERR901 ----------------------------------------------------------------------------------------


def _schedulers(line: DeployLine) -> int:
    text = line.text
    if text.lstrip().startswith(("#", ";", "//")):
        return 0
    multi = _MULTI.search(text)
    if multi is not None:
        # `celery multi start 3 -B` or `celery multi start w1 w2 -B`: one beat per node.
        nodes = [n for n in multi.group("nodes").split() if not n.startswith("-")]
        if len(nodes) == 1 and nodes[0].isdigit():
            return int(nodes[0])
        return len(nodes)
    if _EMBEDDED.search(text) or _BEAT.search(text):
        return 1
    return 0


def _locked(ctx: Context) -> bool:
    for setting in ctx.config.get("beat_scheduler"):
        value = literal(setting.value)
        if not isinstance(value, str) or "redbeat" in value.lower():
            return True
    if any(
        "redbeat" in line.text.lower() or "single-beat" in line.text.lower()
        for line in ctx.project.deploy_lines
    ):
        return True
    for module in ctx.project.modules:
        if any(target.split(".")[0] in _LOCK_MODULES for target in module.imports.values()):
            return True
    return False


def _beats(ctx: Context) -> Iterator[Finding]:
    by_file: dict[str, list[tuple[DeployLine, int]]] = {}
    for line in ctx.project.deploy_lines:
        count = _schedulers(line)
        if count:
            by_file.setdefault(line.display, []).append((line, count))
    crowded = {f: lines for f, lines in by_file.items() if sum(c for _, c in lines) > 1}
    if not crowded or _locked(ctx):
        return
    for lines in crowded.values():
        first = lines[0][0]
        if lines[0][1] > 1:
            yield ctx.deploy_finding(
                BEAT_WITHOUT_LOCK,
                first,
                f"this starts {lines[0][1]} beat schedulers and nothing locks the schedule: "
                "each periodic job is sent once per scheduler",
            )
        for line, _ in lines[1:]:
            yield ctx.deploy_finding(
                BEAT_WITHOUT_LOCK,
                line,
                f"a second beat scheduler (the first is on line {first.line}) and nothing locks "
                "the schedule: each periodic job is sent twice",
            )


# ERR902 ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    task: str
    place: str
    module: Module
    node: ast.AST
    how: str


def _schedules(ctx: Context) -> Iterator[Finding]:
    entries = list(_config_entries(ctx))
    entries += _site_entries(ctx)
    entries += _decorator_entries(ctx)
    by_task: dict[str, list[_Entry]] = {}
    for entry in entries:
        by_task.setdefault(entry.task, []).append(entry)
    for task_name, found in by_task.items():
        found.sort(key=lambda e: (e.module.display, getattr(e.node, "lineno", 0)))
        first = found[0]
        for entry in found[1:]:
            if entry.place == first.place:
                continue
            line = getattr(first.node, "lineno", 0)
            yield ctx.finding(
                SCHEDULE_TWICE,
                entry.module,
                entry.node,
                f"`{task_name}` is scheduled here ({entry.how}) and at "
                f"{first.module.display}:{line} ({first.how}): it fires once per schedule",
            )
    yield from _replaced(ctx)


def _config_entries(ctx: Context) -> Iterator[_Entry]:
    for setting in ctx.config.get("beat_schedule"):
        value = setting.value
        # `app.conf.beat_schedule = settings.SCHEDULE` refers to a schedule defined elsewhere:
        # it is counted where it is written, not a second time here.
        if not isinstance(value, ast.Dict):
            continue
        # Alternative settings modules are one place; each app.conf module is its own.
        place = "settings" if setting.source == "settings" else f"conf:{setting.module.name}"
        for item in value.values:
            if not isinstance(item, ast.Dict):
                continue
            for key, inner in zip(item.keys, item.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "task":
                    name = literal(inner)
                    if isinstance(name, str):
                        yield _Entry(name, place, setting.module, item, "beat_schedule")


def _task_name(ctx: Context, site: Site, expr: ast.expr | None) -> str | None:
    """The task name a schedule refers to: ``t.s()``, ``t``, ``signature("name")``, "name"."""
    if expr is None:
        return None
    value = literal(expr)
    if isinstance(value, str):
        return value
    if isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr in {"s", "si", "signature"}:
            expr = func.value
        elif getattr(func, "id", getattr(func, "attr", None)) == "signature" and expr.args:
            found = literal(expr.args[0])
            return found if isinstance(found, str) else None
    task = ctx.project.task_at(site.module, expr, site.local)
    return task.name if task is not None else None


def _site_entries(ctx: Context) -> list[_Entry]:
    found: list[_Entry] = []
    for site in ctx.project.sites:
        func = site.node.func
        call = site.node
        attr = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if attr == "add_periodic_task":
            signature = call.args[1] if len(call.args) > 1 else None
            kw = keyword(call, "sig")
            name = _task_name(ctx, site, kw.value if kw else signature)
            if name is not None and not _errands_app(ctx, site, func):
                found.append(
                    _Entry(name, f"add:{site.module.name}", site.module, call, "add_periodic_task")
                )
                continue
        if (
            isinstance(func, ast.Attribute)
            and attr in _ERRANDS_SCHEDULE
            and _errands_app(ctx, site, func)
        ):
            for arg in call.args[:1] or [kw.value for kw in call.keywords if kw.arg == "task"]:
                name = _task_name(ctx, site, arg)
                if name is not None:
                    found.append(
                        _Entry(
                            name,
                            f"errands:{site.module.name}",
                            site.module,
                            call,
                            f"errands `{attr}`",
                        )
                    )
        elif attr in {"create", "get_or_create", "update_or_create"} and _periodic_model(func):
            name = _db_task(call)
            if name is not None:
                found.append(_Entry(name, "database", site.module, call, "PeriodicTask row"))
    return found


def _errands_app(ctx: Context, site: Site, func: ast.expr) -> bool:
    if not isinstance(func, ast.Attribute):
        return False
    found = app_of(ctx.project, site.module, func.value, site.local)
    return found is not None and found[0] is Framework.ERRANDS and found[1] is not None


def _periodic_model(func: ast.expr) -> bool:
    """``PeriodicTask.objects.<method>``: django_celery_beat's schedule table."""
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "objects"
        and isinstance(func.value.value, ast.Name | ast.Attribute)
        and getattr(func.value.value, "id", getattr(func.value.value, "attr", ""))
        in _PERIODIC_MODELS
    )


def _db_task(call: ast.Call) -> str | None:
    task = keyword(call, "task")
    if task is not None:
        value = literal(task.value)
        return value if isinstance(value, str) else None
    defaults = keyword(call, "defaults")
    if defaults is not None and isinstance(defaults.value, ast.Dict):
        for key, value_node in zip(defaults.value.keys, defaults.value.values, strict=True):
            if isinstance(key, ast.Constant) and key.value == "task":
                value = literal(value_node)
                return value if isinstance(value, str) else None
    return None


def _decorator_entries(ctx: Context) -> list[_Entry]:
    found: list[_Entry] = []
    for task in ctx.tasks():
        if task.periodic:
            found.append(
                _Entry(
                    task.name,
                    f"decorator:{task.module.name}",
                    task.module,
                    task.node,
                    "@periodic_task",
                )
            )
            continue
        if task.framework is Framework.ERRANDS:
            found.extend(_errands_decorators(ctx, task))
    return found


def _errands_decorators(ctx: Context, task: TaskDef) -> Iterator[_Entry]:
    for decorator in task.node.decorator_list:
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(func, ast.Attribute) and func.attr in _ERRANDS_SCHEDULE:
            app = app_of(ctx.project, task.module, func.value)
            if app is not None and app[0] is Framework.ERRANDS:
                yield _Entry(
                    task.name,
                    f"errands:{task.module.name}",
                    task.module,
                    decorator,
                    f"errands `@{func.attr}`",
                )
    for key in ("schedule", "cron", "every"):
        option = task.options.get(key)
        if option is not None:
            yield _Entry(
                task.name,
                f"errands:{task.module.name}",
                option.module,
                option.node,
                f"errands `{key}=`",
            )


def _replaced(ctx: Context) -> Iterator[Finding]:
    """Whole-schedule assignments in two places: the later one wins, silently."""
    replacing = [
        s for s in ctx.config.get("beat_schedule") if s.replaces and isinstance(s.value, ast.Dict)
    ]
    places: dict[str, tuple[Module, ast.AST]] = {}
    for setting in replacing:
        place = "settings" if setting.source == "settings" else f"conf:{setting.module.name}"
        places.setdefault(place, (setting.module, setting.node))
    if len(places) < 2:
        return
    ordered = sorted(places.values(), key=lambda p: (p[0].display, getattr(p[1], "lineno", 0)))
    first_module, first_node = ordered[0]
    for module, node in ordered[1:]:
        yield ctx.finding(
            SCHEDULE_TWICE,
            module,
            node,
            f"`beat_schedule` is also assigned at {first_module.display}:"
            f"{getattr(first_node, 'lineno', 0)}: one assignment replaces the other's entries",
            "keep one `beat_schedule` and add entries to it",
        )
