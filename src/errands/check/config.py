"""Celery settings found anywhere in the tree, under any of their names.

Celery reads the same setting from many places: ``Celery(broker=...)``, ``app.conf.x = ...``,
``app.conf.update(...)``, a ``celeryconfig`` module, a class given to ``config_from_object``,
or Django settings with the ``CELERY_`` prefix (and the pre-4.0 upper-case names). The checker
merges them all under the lower-case name, project-wide.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from errands.check.evaluate import UNKNOWN, keyword, literal
from errands.check.model import Framework
from errands.check.project import Project
from errands.check.source import Module, top_level

__all__ = ["CeleryConfig", "Setting", "Status"]

Status = Literal["absent", "true", "false", "unknown"]

_KEYS = frozenset(
    {
        "accept_content",
        "beat_schedule",
        "beat_scheduler",
        "broker_read_url",
        "broker_transport",
        "broker_transport_options",
        "broker_url",
        "broker_write_url",
        "event_serializer",
        "result_accept_content",
        "result_backend",
        "result_expires",
        "result_serializer",
        "task_acks_late",
        "task_annotations",
        "task_default_priority",
        "task_default_queue",
        "task_ignore_result",
        "task_queue_max_priority",
        "task_queues",
        "task_routes",
        "task_serializer",
        "task_soft_time_limit",
        "task_time_limit",
    }
)
# Names from before Celery 4.0, still read by Celery 5 when the new names are not used.
_OLD_NAMES = {
    "BROKER_URL": "broker_url",
    "BROKER_TRANSPORT": "broker_transport",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_ANNOTATIONS": "task_annotations",
    "CELERY_DEFAULT_PRIORITY": "task_default_priority",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_QUEUE_MAX_PRIORITY": "task_queue_max_priority",
    "CELERY_QUEUES": "task_queues",
    "CELERY_ROUTES": "task_routes",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_SCHEDULER": "beat_scheduler",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
}
_UPPER = {f"CELERY_{key.upper()}": key for key in _KEYS} | _OLD_NAMES
_CONFIG_MODULES = frozenset({"celeryconfig", "celery_config", "celerysettings", "celery_settings"})
_APP_KEYWORDS = {"broker": "broker_url", "backend": "result_backend"}


@dataclass(eq=False, slots=True)
class Setting:
    """One place that sets a Celery setting.

    Attributes:
        key: the setting's lower-case name (``task_acks_late``).
        value: the expression it is set to (for a ``x["k"] = v`` update, a one-entry dict).
        module: the module it is in.
        node: where findings about it point.
        source: "app" (``Celery(...)`` keywords), "conf" (``app.conf``), "settings" (a settings
            or celeryconfig module, a config class or dict).
        replaces: False for an update of a dict setting (``.update()``, ``x["k"] = v``).
    """

    key: str
    value: ast.expr
    module: Module
    node: ast.AST
    source: str
    replaces: bool = True


class CeleryConfig:
    """The Celery settings of a project, merged from every place that sets them."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.settings: dict[str, list[Setting]] = defaultdict(list)
        self._config_modules: set[str] = set()
        self._outside = False  # some configuration is read from outside the tree
        self._django_settings = False  # configuration is read from Django's settings
        self._collect()

    @property
    def visible(self) -> bool:
        """Whether the project's Celery configuration is in the scanned tree.

        False when it comes from an environment variable, a module or a Django settings module
        the tree does not hold, or when the tree holds no app and no setting at all (a folder of
        `shared_task` modules scanned on its own). Rules that fire on a setting's absence stay
        quiet then.
        """
        if self._outside:
            return False
        if self._django_settings and not any(
            s.source == "settings" for found in self.settings.values() for s in found
        ):
            return False
        has_app = any(a.framework is Framework.CELERY for a in self.project.apps.values())
        return has_app or any(self.settings.values())

    def get(self, key: str) -> list[Setting]:
        """Every place that sets `key`, in scan order."""
        return self.settings.get(key, [])

    def status(self, key: str) -> Status:
        """Whether `key` is set to something true, false, unknown (not a literal), or not set."""
        found = self.get(key)
        if not found:
            return "absent"
        values = [literal(s.value, self.project.lookup(s.module)) for s in found]
        if any(v is not UNKNOWN and bool(v) for v in values):
            return "true"
        if any(v is UNKNOWN for v in values):
            return "unknown"
        return "false"

    def _add(self, key: str, value: ast.expr, module: Module, node: ast.AST, source: str) -> None:
        self.settings[key].append(Setting(key, value, module, node, source))

    def _update(
        self, key: str, value: ast.expr, module: Module, node: ast.AST, source: str
    ) -> None:
        self.settings[key].append(Setting(key, value, module, node, source, replaces=False))

    def _collect(self) -> None:
        project = self.project
        for app in project.apps.values():
            if app.framework is Framework.CELERY:
                for kw in app.call.keywords:
                    key = _APP_KEYWORDS.get(kw.arg or "", kw.arg)
                    if key in _KEYS:
                        self._add(key, kw.value, app.module, kw, "app")
        for site in project.sites:
            self._from_call(site.module, site.node)
        for module, assign, _ in project.assignments:
            for target in assign.targets:
                self._from_target(module, assign, target)
        for module in project.modules:
            last = module.name.rsplit(".", 1)[-1]
            lower_ok = last in _CONFIG_MODULES or module.name in self._config_modules
            self._from_body(module, module.tree.body, lower_ok=lower_ok, top=True)

    def _from_body(
        self, module: Module, body: list[ast.stmt], *, lower_ok: bool, top: bool = False
    ) -> None:
        for stmt in top_level(body) if top else body:
            targets: list[ast.expr] = []
            if isinstance(stmt, ast.Assign):
                targets = stmt.targets
                value = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets = [stmt.target]
                value = stmt.value
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                key = _UPPER.get(target.id)
                if key is None and lower_ok and target.id in _KEYS:
                    key = target.id
                if key is not None:
                    self._add(key, value, module, stmt, "settings")
            # `CELERY_BEAT_SCHEDULE.update({...})` at module level adds entries.
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                call = stmt.value
                func = call.func
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr == "update"
                    and isinstance(func.value, ast.Name)
                    and _UPPER.get(func.value.id) == "beat_schedule"
                    and call.args
                ):
                    self._update("beat_schedule", call.args[0], module, call, "settings")

    def _from_call(self, module: Module, call: ast.Call) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return
        owner = func.value
        if func.attr == "update" and _is_conf(owner):
            for kw in call.keywords:
                key = _key(kw.arg)
                if key is not None:
                    self._add(key, kw.value, module, kw, "conf")
            if call.args and isinstance(call.args[0], ast.Dict):
                self._from_dict(module, call.args[0], "conf")
        elif func.attr == "update" and _is_conf_key(owner, "beat_schedule") and call.args:
            self._update("beat_schedule", call.args[0], module, call, "conf")
        elif func.attr == "config_from_object":
            given = call.args[0] if call.args else getattr(keyword(call, "obj"), "value", None)
            if given is not None:
                self._from_object(module, given)
        elif func.attr == "config_from_envvar":
            self._outside = True

    def _from_object(self, module: Module, obj: ast.expr) -> None:
        if isinstance(obj, ast.Dict):
            self._from_dict(module, obj, "settings")
            return
        if isinstance(obj, ast.Constant) and isinstance(obj.value, str):
            # "pkg.celeryconfig" or "pkg.config:Config"; Django's settings are read by prefix.
            name, _, attr = obj.value.partition(":")
            if obj.value == "django.conf:settings":
                self._django_settings = True
                return
            if not attr:
                canonical = self.project.canonical(name)
                self._config_modules.add(canonical)
                self._outside |= self.project.module_named(canonical) is None
                return
            qualname = self.project.canonical(f"{name}.{attr}")
        else:
            qualname = self.project.resolve(module, obj) or ""
        if self.project.module_named(qualname) is not None:
            self._config_modules.add(qualname)
            return
        found = self.project.definition(qualname)
        target = found[0].defs.get(found[1]) if found else None
        if found is not None and isinstance(target, ast.ClassDef):
            self._from_body(found[0], target.body, lower_ok=True)
        else:
            self._outside = True

    def _from_dict(self, module: Module, node: ast.Dict, source: str) -> None:
        for key_node, value in zip(node.keys, node.values, strict=True):
            if isinstance(key_node, ast.Constant) and isinstance(key_node.value, str):
                key = _key(key_node.value)
                if key is not None:
                    self._add(key, value, module, key_node, source)

    def _from_target(self, module: Module, assign: ast.Assign, target: ast.expr) -> None:
        if isinstance(target, ast.Attribute) and _is_conf(target.value):
            key = _key(target.attr)
            if key is not None:
                self._add(key, assign.value, module, assign, "conf")
        elif isinstance(target, ast.Subscript):
            index = target.slice
            if not (isinstance(index, ast.Constant) and isinstance(index.value, str)):
                return
            if _is_conf(target.value):
                key = _key(index.value)
                if key is not None:
                    self._add(key, assign.value, module, assign, "conf")
                return
            # One entry added to a schedule: `app.conf.beat_schedule["x"] = {...}`.
            owner = target.value
            is_settings = isinstance(owner, ast.Name) and _UPPER.get(owner.id) == "beat_schedule"
            if is_settings or _is_conf_key(owner, "beat_schedule"):
                entry = ast.Dict(keys=[index], values=[assign.value])
                source = "settings" if is_settings else "conf"
                self._update("beat_schedule", entry, module, assign, source)


def _key(name: str | None) -> str | None:
    if name is None:
        return None
    if name in _KEYS:
        return name
    return _UPPER.get(name)


def _is_conf(expr: ast.expr) -> bool:
    """``<something>.conf``: Celery's configuration object."""
    return isinstance(expr, ast.Attribute) and expr.attr == "conf"


def _is_conf_key(expr: ast.expr, key: str) -> bool:
    return isinstance(expr, ast.Attribute) and expr.attr == key and _is_conf(expr.value)
