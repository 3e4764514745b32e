"""Finding and parsing the files of a project: Python modules and deployment files.

Nothing here runs the scanned code: modules are read and parsed with `ast`, and deployment files
(Procfiles, compose files, shell scripts, unit files) are read as text for the Celery command
lines they hold.
"""

from __future__ import annotations

import ast
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DeployLine", "Module", "SourceSet", "import_bindings", "load_sources", "top_level"]

# A module that mentions none of these words cannot define a task, an app or a Celery setting,
# call a task or wait for one, so it is not parsed at all (migrations, template tags, views that
# never enqueue): the words must cover everything a rule looks at (docs/performance.md).
_KEYWORDS = (
    b"celery",
    b"errands",
    b"task",
    b"delay",
    b"apply_async",
    b"asyncresult",
    b"broker",
    b"beat",
    b"periodic",
    b"signature",
    b"serializer",
    b"accept_content",
    b"chord",
    b"chain",
    b"group",
)
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages"})
_DEPLOY_SUFFIXES = frozenset(
    {".sh", ".bash", ".yml", ".yaml", ".service", ".conf", ".ini", ".cfg", ".toml", ".env"}
)
_DEPLOY_PREFIXES = ("procfile", "dockerfile", "makefile", "docker-compose", "compose")
_MAX_DEPLOY_BYTES = 256 * 1024
_SKIPPED = object()
_IGNORE = re.compile(r"#\s*errands:\s*ignore(?:\[([^\]]*)\])?")


@dataclass(frozen=True, slots=True)
class DeployLine:
    """A line of a deployment file that mentions Celery (a worker or beat command line)."""

    display: str
    line: int
    text: str


@dataclass(eq=False, slots=True)
class Module:
    """A parsed Python module and its module-level symbol tables.

    Attributes:
        path: the file.
        display: the path as findings show it.
        name: the dotted module name, from the packages (``__init__.py``) around the file.
        aliases: other names the module may be imported under (relative to the scanned root).
        tree: the parsed module.
        is_package: True for an ``__init__.py``.
        ignores: line -> codes silenced on it by ``# errands: ignore[...]`` (None: all codes).
        imports: local name -> dotted name it was imported as, for module-level imports.
        defs: module-level functions and classes by name.
        assigns: module-level ``name = value`` bindings, the last one of each name.
    """

    path: Path
    display: str
    name: str
    aliases: tuple[str, ...]
    tree: ast.Module
    is_package: bool
    ignores: dict[int, frozenset[str] | None] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = field(
        default_factory=dict
    )
    assigns: dict[str, ast.expr] = field(default_factory=dict)

    def ignored(self, line: int, code: str) -> bool:
        """Whether ``# errands: ignore`` on `line` silences `code`."""
        if line not in self.ignores:
            return False
        codes = self.ignores[line]
        return codes is None or code in codes or any(code.startswith(c) for c in codes)

    def absolute(self, module: str | None, level: int) -> str:
        """The absolute name of ``from <level dots><module> import ...`` written in this module."""
        if level == 0:
            return module or ""
        parts = self.name.split(".")
        # A package's own name is its base; a plain module's base is the package around it.
        keep = len(parts) - level + (1 if self.is_package else 0)
        base = parts[: max(keep, 0)]
        if module:
            base.append(module)
        return ".".join(base)


@dataclass(slots=True)
class SourceSet:
    """Everything read from the scanned paths.

    Attributes:
        modules: the modules parsed up front (those that mention tasks, apps or settings).
        deploy_lines: lines of deployment files that mention Celery.
        files_seen: every file looked at.
        syntax_errors: modules that do not parse.
        deferred: modules skipped up front, by name, parsed when a lookup needs one (a model
            class used in an annotation, a constant used as a time limit).
    """

    modules: list[Module]
    deploy_lines: list[DeployLine]
    files_seen: int
    syntax_errors: list[str]
    deferred: dict[str, tuple[Path, Path, str]] = field(default_factory=dict)

    def load(self, name: str) -> Module | None:
        """Parse the deferred module `name` now, if there is one."""
        entry = self.deferred.pop(name, None)
        if entry is None:
            return None
        file, base, display = entry
        module = _parse(file, base, display, self.syntax_errors, force=True)
        return module if isinstance(module, Module) else None


def load_sources(paths: Iterable[Path], cwd: Path) -> SourceSet:
    """Read and parse every relevant file under `paths` (files or directories)."""
    modules: list[Module] = []
    deploy: list[DeployLine] = []
    errors: list[str] = []
    deferred: dict[str, tuple[Path, Path, str]] = {}
    seen = 0
    done: set[Path] = set()
    for given in paths:
        root = given.resolve()
        base = root if root.is_dir() else root.parent
        for file in _walk(root):
            if file in done:
                continue
            done.add(file)
            seen += 1
            display = _display(file, cwd)
            if file.suffix == ".py":
                module = _parse(file, base, display, errors)
                if isinstance(module, Module):
                    modules.append(module)
                elif module is _SKIPPED:
                    name, aliases = _module_names(file, base)
                    for alias in (name, *aliases):
                        deferred.setdefault(alias, (file, base, display))
            elif _is_deploy_file(file):
                deploy.extend(_deploy_lines(file, display))
    return SourceSet(
        modules=modules,
        deploy_lines=deploy,
        files_seen=seen,
        syntax_errors=errors,
        deferred=deferred,
    )


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        # Prune hidden folders, caches and virtualenvs: their code is not the project's.
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            yield here / name


def _display(file: Path, cwd: Path) -> str:
    try:
        return file.relative_to(cwd).as_posix()
    except ValueError:
        return file.as_posix()


def _is_deploy_file(file: Path) -> bool:
    lower = file.name.lower()
    return file.suffix.lower() in _DEPLOY_SUFFIXES or lower.startswith(_DEPLOY_PREFIXES)


def _deploy_lines(file: Path, display: str) -> list[DeployLine]:
    try:
        if file.stat().st_size > _MAX_DEPLOY_BYTES:
            return []
        data = file.read_bytes()
    except OSError:
        return []
    if b"celery" not in data.lower():
        return []
    text = data.decode("utf-8", errors="replace")
    return [
        DeployLine(display, number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if "celery" in line.lower()
    ]


def _parse(
    file: Path, base: Path, display: str, errors: list[str], *, force: bool = False
) -> Module | object | None:
    """The parsed module; `_SKIPPED` when it mentions nothing of interest; None if unreadable."""
    try:
        data = file.read_bytes()
    except OSError:
        return None
    lower = data.lower()
    name_hint = file.name.lower()
    if not force and not (
        any(word in lower for word in _KEYWORDS)
        or file.name == "__init__.py"
        or "celery" in name_hint
        or "settings" in name_hint
    ):
        return _SKIPPED
    try:
        # Scanned code may hold invalid escape sequences; their SyntaxWarnings are not ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(data, filename=str(file))
    except (SyntaxError, ValueError):
        errors.append(display)
        return None
    name, aliases = _module_names(file, base)
    module = Module(
        path=file,
        display=display,
        name=name,
        aliases=aliases,
        tree=tree,
        is_package=file.name == "__init__.py",
    )
    if b"errands:" in data:
        module.ignores = _ignores(data.decode("utf-8", errors="replace"))
    _fill_tables(module)
    return module


def _module_names(file: Path, base: Path) -> tuple[str, tuple[str, ...]]:
    parts = [] if file.name == "__init__.py" else [file.stem]
    directory = file.parent
    while (directory / "__init__.py").exists() and directory.parent != directory:
        parts.insert(0, directory.name)
        directory = directory.parent
    name = ".".join(parts) or file.stem
    aliases: list[str] = []
    if not (file.parent / "__init__.py").exists():
        # A module outside any package (namespace packages, src layouts) is imported by its path
        # under the scanned root: index that name too, and the same without a leading "src".
        # Modules inside packages keep their package name only, so a `shop/celery.py` never
        # stands in for the real `celery`.
        try:
            rel = file.relative_to(base).with_suffix("").parts
        except ValueError:
            rel = ()
        for candidate in (rel, rel[1:] if rel[:1] == ("src",) else ()):
            dotted = ".".join(candidate)
            if len(candidate) > 1 and dotted != name and dotted not in aliases:
                aliases.append(dotted)
    return name, tuple(aliases)


def _ignores(text: str) -> dict[int, frozenset[str] | None]:
    found: dict[int, frozenset[str] | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _IGNORE.search(line)
        if match is None:
            continue
        codes = match.group(1)
        if codes is None:
            found[number] = None
        else:
            found[number] = frozenset(c.strip().upper() for c in codes.split(",") if c.strip())
    return found


def top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside module-level if/try/with blocks."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from top_level(stmt.body)
            yield from top_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from top_level(stmt.body)
            for handler in stmt.handlers:
                yield from top_level(handler.body)
            yield from top_level(stmt.orelse)
            yield from top_level(stmt.finalbody)
        elif isinstance(stmt, ast.With):
            yield from top_level(stmt.body)


def import_bindings(module: Module, stmt: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """The (local name, dotted name) pairs an import statement binds."""
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            if alias.asname:
                yield alias.asname, alias.name
            else:
                # `import a.b` binds `a`, and `a.b.c` then resolves through it.
                head = alias.name.split(".")[0]
                yield head, head
        return
    source = module.absolute(stmt.module, stmt.level)
    for alias in stmt.names:
        if alias.name == "*":
            continue
        full = f"{source}.{alias.name}" if source else alias.name
        yield alias.asname or alias.name, full


def _fill_tables(module: Module) -> None:
    for stmt in top_level(module.tree.body):
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            module.imports.update(import_bindings(module, stmt))
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            module.defs[stmt.name] = stmt
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    module.assigns[target.id] = stmt.value
        elif (
            isinstance(stmt, ast.AnnAssign)
            and stmt.value is not None
            and isinstance(stmt.target, ast.Name)
        ):
            module.assigns[stmt.target.id] = stmt.value
