"""`check_paths` on projects laid out the ways real ones are."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent

import pytest

from errands.check import UnknownRuleError, check_paths


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text).lstrip())
    return root


def codes(root: Path, **kwargs: list[str]) -> list[tuple[str, int, str]]:
    report = check_paths([root], cwd=root, **kwargs)
    return [(f.path, f.line, f.code) for f in report.findings]


CELERY_APP = """
    from celery import Celery

    app = Celery("shop", broker="redis://redis:6379/0")
    app.conf.update(task_acks_late=True, task_time_limit=60)
"""


def test_src_layout_resolves_tasks_across_packages(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "src/shop/__init__.py": "",
            "src/shop/worker.py": CELERY_APP,
            "src/shop/tasks.py": """
                from shop.worker import app

                @app.task
                def ship(order_id):
                    return order_id
            """,
            "src/shop/views.py": """
                from datetime import date

                from shop.tasks import ship

                def view(request):
                    ship.delay(date.today())
            """,
        },
    )
    assert codes(tmp_path) == [("src/shop/views.py", 6, "ERR201")]


def test_modules_without_packages_resolve_by_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "proj/worker.py": CELERY_APP,
            "proj/jobs.py": """
                from proj.worker import app

                @app.task
                def total(account_id):
                    return account_id
            """,
            "proj/report.py": """
                from proj.jobs import total
                from proj.worker import app

                @app.task
                def report(account_id):
                    return total.delay(account_id).get()
            """,
        },
    )
    assert codes(tmp_path) == [("proj/report.py", 6, "ERR301")]


def test_a_single_file_can_be_scanned(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tasks.py": """
                from celery import shared_task

                @shared_task(max_retries=None, acks_late=True, time_limit=30)
                def sync(account_id):
                    return account_id
            """
        },
    )
    report = check_paths([tmp_path / "tasks.py"], cwd=tmp_path)
    assert [(f.line, f.code) for f in report.findings] == [(3, "ERR401")]
    assert report.tasks == 1


def test_a_local_module_named_celery_does_not_hide_the_library(tmp_path: Path) -> None:
    # The Django convention: proj/celery.py imports from the real celery package.
    write(
        tmp_path,
        {
            "proj/__init__.py": "from .celery import app\n",
            "proj/celery.py": CELERY_APP,
            "proj/tasks.py": """
                from celery import shared_task

                @shared_task(autoretry_for=(OSError,))
                def sync(account_id):
                    return account_id
            """,
        },
    )
    assert codes(tmp_path) == [("proj/tasks.py", 3, "ERR403")]


def test_ignore_comment_in_a_deployment_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tasks.py": CELERY_APP,
            "Procfile": """
                worker: celery -A tasks worker -B
                beat: celery -A tasks beat  # errands: ignore[ERR901] staging only
            """,
        },
    )
    assert codes(tmp_path) == []


def test_invalid_escape_sequences_in_scanned_code_are_not_our_warnings(tmp_path: Path) -> None:
    write(tmp_path, {"celery_utils.py": 'PATTERN = "\\d+ tasks"\n'})
    report = check_paths([tmp_path], cwd=tmp_path)
    assert report.findings == []
    assert report.unparsable == []


def test_unknown_selector_raises(tmp_path: Path) -> None:
    with pytest.raises(UnknownRuleError, match="ERR77"):
        check_paths([tmp_path], select=["ERR77"])


TASKS_WITHOUT_CONFIG = """
    from celery import shared_task

    @shared_task(max_retries=None)
    def sync(account_id):
        return account_id
"""


def test_ignored_family_is_not_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "proj/celery.py": 'from celery import Celery\n\napp = Celery("proj")\n',
            "proj/tasks.py": TASKS_WITHOUT_CONFIG,
        },
    )
    assert {c for _, _, c in codes(tmp_path)} == {"ERR401", "ERR501", "ERR801"}
    assert {c for _, _, c in codes(tmp_path, ignore=["retries", "ERR5"])} == {"ERR801"}


def test_missing_settings_are_not_reported_when_the_configuration_is_elsewhere(
    tmp_path: Path,
) -> None:
    # Only the tasks folder was scanned: the app and its settings live outside it.
    write(tmp_path, {"tasks.py": TASKS_WITHOUT_CONFIG})
    assert {c for _, _, c in codes(tmp_path)} == {"ERR401"}
    # An app that reads Django settings the tree does not hold is the same case.
    write(
        tmp_path,
        {
            "celery_app.py": """
                from celery import Celery

                app = Celery("proj")
                app.config_from_object("django.conf:settings", namespace="CELERY")
            """
        },
    )
    assert {c for _, _, c in codes(tmp_path)} == {"ERR401"}


def test_a_large_project_is_scanned_in_seconds(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/worker.py": CELERY_APP})
    task = dedent(
        """
        from app.worker import app
        from app.models_{i} import Thing

        @app.task(soft_time_limit=30)
        def job_{i}(thing_id):
            return thing_id

        def view_{i}(request, pk):
            thing = Thing.objects.get(pk=pk)
            job_{i}.delay(thing.pk)
        """
    )
    model = "class Thing:\n    objects = None\n" + "\n".join(f"X{j} = {j}" for j in range(200))
    for i in range(1000):
        (tmp_path / "app" / f"tasks_{i}.py").write_text(task.format(i=i))
        (tmp_path / "app" / f"models_{i}.py").write_text(model)
    started = time.perf_counter()
    report = check_paths([tmp_path], cwd=tmp_path)
    elapsed = time.perf_counter() - started
    assert report.findings == []
    assert report.tasks == 1000
    assert elapsed < 20, f"{elapsed:.1f} s for 2,000 modules"


def test_a_schedule_assigned_by_reference_is_one_schedule(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/settings.py": """
                CELERY_TASK_ACKS_LATE = True
                CELERY_TASK_TIME_LIMIT = 60
                CELERY_BEAT_SCHEDULE = {
                    "digest": {"task": "proj.tasks.digest", "schedule": 3600},
                }
            """,
            "proj/celery.py": """
                from celery import Celery

                from proj.settings import CELERY_BEAT_SCHEDULE

                app = Celery("proj")
                app.conf.beat_schedule = CELERY_BEAT_SCHEDULE
            """,
            "proj/tasks.py": """
                from proj.celery import app

                @app.task
                def digest():
                    return None
            """,
        },
    )
    assert codes(tmp_path) == []


def test_options_hidden_in_a_mapping_may_bind_the_task(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "proj/__init__.py": "",
            "proj/celery.py": CELERY_APP,
            "proj/tasks.py": """
                from proj.celery import app

                DEFAULTS = {"bind": True, "max_retries": 3}

                @app.task(**DEFAULTS)
                def sync(self, account_id):
                    raise self.retry(countdown=5)
            """,
        },
    )
    assert codes(tmp_path) == []
