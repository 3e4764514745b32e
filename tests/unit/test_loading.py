"""Which app the operator commands read: ERRANDS_APP, else [tool.errands] in pyproject.toml."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from errands.cli_target import resolve_target
from errands.errors import ConfigurationError
from errands.loading import FoundApp, find_app_spec, load_app


def _project(folder: Path, toml: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(textwrap.dedent(toml))
    return folder


def test_errands_app_in_the_environment_comes_first(tmp_path: Path) -> None:
    _project(tmp_path, '[tool.errands]\napp = "from.pyproject:app"\n')
    found = find_app_spec(tmp_path, {"ERRANDS_APP": "shop.tasks:app"})
    assert found == FoundApp("shop.tasks:app", "ERRANDS_APP")


def test_the_nearest_pyproject_with_an_errands_table_names_the_app(tmp_path: Path) -> None:
    root = _project(tmp_path, '[tool.errands]\napp = "shop.tasks:app"\n')
    inner = _project(tmp_path / "docs", "[project]\nname = 'docs'\n")  # says nothing of errands
    deep = inner / "a" / "b"
    deep.mkdir(parents=True)
    found = find_app_spec(deep, {})
    assert found is not None
    assert found.spec == "shop.tasks:app"
    assert found.root == root.resolve()
    assert found.source == f"[tool.errands] in {root.resolve() / 'pyproject.toml'}"


def test_no_environment_and_no_table_finds_nothing(tmp_path: Path) -> None:
    _project(tmp_path, "[tool.ruff]\nline-length = 100\n")
    assert find_app_spec(tmp_path, {"ERRANDS_APP": "  "}) is None
    _project(tmp_path / "p", "[tool.errands]\n")  # the nearest errands table names none
    assert find_app_spec(tmp_path / "p", {}) is None


def test_a_broken_pyproject_or_app_value_is_a_clear_error(tmp_path: Path) -> None:
    _project(tmp_path, "[tool.errands\n")
    with pytest.raises(ConfigurationError, match=r"cannot read .*pyproject\.toml"):
        find_app_spec(tmp_path, {})
    _project(tmp_path, "[tool.errands]\napp = 3\n")
    wanted = re.escape('write it as app = "package.module:app"')
    with pytest.raises(ConfigurationError, match=wanted):
        find_app_spec(tmp_path, {})


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder with a module ``shop_tasks`` holding an app in namespace ``shop``."""
    (tmp_path / "shop_tasks.py").write_text(
        "from errands import App\napp = App('redis://127.0.0.1:1/3', namespace='shop')\n"
    )
    _project(tmp_path, '[tool.errands]\napp = "shop_tasks:app"\n')
    monkeypatch.delenv("ERRANDS_APP", raising=False)
    yield tmp_path
    sys.modules.pop("shop_tasks", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_commands_read_the_app_the_pyproject_names_from_a_subfolder(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (shop / "sub").mkdir()
    monkeypatch.chdir(shop / "sub")
    chosen = resolve_target(None, None, None)
    assert (chosen.app.namespace, chosen.discovered) == ("shop", True)
    assert chosen.where() == (
        f"namespace 'shop' at redis://127.0.0.1:1/3 (app shop_tasks:app from [tool.errands] in "
        f"{shop.resolve() / 'pyproject.toml'})"
    )


def test_explicit_options_read_where_they_say_and_refuse_to_mix_with_app(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(shop)
    chosen = resolve_target(None, None, "other")
    assert (chosen.app.namespace, chosen.discovered) == ("other", False)
    with pytest.raises(ConfigurationError, match="not both"):
        resolve_target("shop_tasks:app", None, "other")
    assert load_app("shop_tasks:app").namespace == "shop"


def test_an_app_that_does_not_import_names_where_its_name_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ERRANDS_APP", "no_such_module_here:app")
    with pytest.raises(ConfigurationError, match=r"^the app ERRANDS_APP names: cannot import"):
        resolve_target(None, None, None)


def test_with_nothing_named_the_defaults_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ERRANDS_APP", raising=False)
    monkeypatch.setenv("ERRANDS_BROKER_URL", "redis://user:secret@db.internal:6380/2")
    chosen = resolve_target(None, None, None)
    assert chosen.where() == (
        "namespace 'errands' at redis://user:***@db.internal:6380/2 (no app named: the defaults)"
    )
