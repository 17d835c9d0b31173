"""The task queue integrations in one process: what a Celery task run while maintenance blocks
work does (eagerly, with no worker), which tasks are exempt, and the RQ worker's errors."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import AppFactory
from servers import TIMEOUT, RedisServer, redis_server, require_module  # noqa: F401 (fixture)
from test_docs_examples import load_example  # noqa: F401 (fixture)

from flask_maintenance import MaintenanceActive, MaintenanceError

pytest.importorskip("celery")


@pytest.fixture
def tasks(make_app: AppFactory) -> Iterator[Any]:
    """A Celery app wired with init_celery, its tasks, and the calls that reached their bodies."""
    from celery import Celery

    from flask_maintenance import Maintenance

    maintenance = Maintenance()
    app = make_app(maintenance, MAINTENANCE_CELERY_EXEMPT="t.listed")
    celery_app = Celery("t", broker="memory://", set_as_current=False)
    maintenance.init_celery(celery_app, app=app)
    ran: list[str] = []

    @celery_app.task(name="t.job", shared=False)
    def job(name: str) -> str:
        ran.append(name)
        return name

    @maintenance.exempt
    @celery_app.task(name="t.above", shared=False)
    def above(name: str) -> str:
        ran.append(name)
        return name

    @celery_app.task(name="t.below", shared=False)
    @maintenance.exempt
    def below(name: str) -> str:
        ran.append(name)
        return name

    @celery_app.task(name="t.listed", shared=False)
    def listed(name: str) -> str:
        ran.append(name)
        return name

    @celery_app.task(name="t.payments", shared=False)
    @maintenance.feature("payments")
    def payments(name: str) -> str:
        ran.append(name)
        return name

    class Tasks:
        pass

    namespace = Tasks()
    namespace.__dict__.update(
        app=app,
        maintenance=maintenance,
        ran=ran,
        job=job,
        above=above,
        below=below,
        listed=listed,
        payments=payments,
    )
    yield namespace


def test_a_task_run_eagerly_while_blocked_does_not_run(tasks: Any) -> None:
    tasks.maintenance.enable(mode="readonly", app=tasks.app)
    result = tasks.job.apply(("x",))
    assert result.state == "FAILURE" and isinstance(result.result, MaintenanceActive)
    assert tasks.ran == []
    tasks.maintenance.disable(app=tasks.app)
    assert tasks.job.apply(("y",)).get() == "y"
    assert tasks.ran == ["y"]


def test_exempt_tasks_run_while_blocked(tasks: Any) -> None:
    tasks.maintenance.enable(app=tasks.app)
    # @m.exempt above or below the task decorator, and a name in MAINTENANCE_CELERY_EXEMPT.
    assert [task.apply((task.name,)).get() for task in (tasks.above, tasks.below, tasks.listed)] == [
        "t.above",
        "t.below",
        "t.listed",
    ]
    assert tasks.ran == ["t.above", "t.below", "t.listed"]


def test_banner_mode_and_the_force_variable_let_tasks_run(
    tasks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks.maintenance.enable(mode="banner", app=tasks.app)
    assert tasks.job.apply(("banner",)).get() == "banner"
    tasks.maintenance.enable(mode="full", app=tasks.app)
    monkeypatch.setenv("FLASK_MAINTENANCE_FORCE", "1")
    assert tasks.job.apply(("forced",)).get() == "forced"
    assert tasks.ran == ["banner", "forced"]


def test_a_task_of_a_switched_off_feature_does_not_run(tasks: Any) -> None:
    tasks.maintenance.enable(feature="payments", app=tasks.app)
    assert isinstance(tasks.payments.apply(("pay",)).result, MaintenanceActive)
    assert tasks.job.apply(("other",)).get() == "other"
    assert tasks.ran == ["other"]


def test_a_task_called_as_a_function_runs_in_its_caller(tasks: Any) -> None:
    # The caller (a view, a command) is gated as what it is; the call is not a task execution.
    tasks.maintenance.enable(app=tasks.app)
    assert tasks.job("direct") == "direct"


def test_init_celery_needs_an_app_with_the_extension() -> None:
    from celery import Celery
    from flask import Flask

    from flask_maintenance import Maintenance

    with pytest.raises(MaintenanceError, match="not set up for maintenance"):
        Maintenance().init_celery(Celery("t", set_as_current=False), app=Flask("bare"))


@pytest.mark.parametrize(
    ("module", "extra"), [("flask_maintenance.celery", "celery"), ("flask_maintenance.rq", "rq")]
)
def test_a_missing_queue_library_names_the_extra(
    module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # `import celery` now fails as if not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=rf'pip install "flask-maintenance-mode\[{extra}\]"'):
        importlib.import_module(module)


# -- the RQ worker's configuration errors, through the real `rq` command ----------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {},
            "Error: no app found: set FLASK_APP, or MAINTENANCE_LOCK_FILE or MAINTENANCE_BACKEND for the worker",
        ),
        ({"FLASK_APP": "broken"}, "Error: cannot load the app 'broken': the database is down"),
        ({"MAINTENANCE_LOCK_FILE": "relative.lock"}, "Error: the lock file must be an absolute path"),
        (
            {"MAINTENANCE_LOCK_FILE": "/srv/app/maintenance.lock", "MAINTENANCE_CHECK_INTERVAL": "soon"},
            "Error: MAINTENANCE_CHECK_INTERVAL must be a number of seconds, not 'soon'",
        ),
    ],
)
def test_the_rq_worker_says_in_one_line_what_is_wrong(
    tmp_path: Path, redis_server: RedisServer, env: dict[str, str], message: str
) -> None:
    require_module("rq", 'pip install -e ".[test]"')
    (tmp_path / "broken.py").write_text('raise RuntimeError("the database is down")\n')
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "MAINTENANCE_"))
    }
    rq = str(Path(sys.executable).parent / "rq")
    result = subprocess.run(
        [rq, "worker", "-w", "flask_maintenance.rq.MaintenanceWorker", "--url", redis_server.url, "--burst"],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    # One line, the last (RQ 2.0 itself warns about its options under Click 8.2 before it).
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith(message), result.stderr


def test_the_docs_celery_example_pauses_all_but_exempt_work(tmp_path: Path, load_example: Any) -> None:
    from flask_maintenance.backends import FileBackend

    example = load_example("celery_app")
    app, maintenance = example.flask_app, example.maintenance
    with maintenance.isolated(FileBackend(str(tmp_path / "maintenance.lock")), check_interval=0, app=app):
        with maintenance.enabled(app=app):
            assert isinstance(example.charge_order.apply((7,)).result, MaintenanceActive)
            assert example.nightly_report.apply().get() == "report written"
        assert example.charge_order.apply((7,)).get() == "order 7 charged"


@pytest.mark.parametrize(
    ("key", "field"),
    [("MAINTENANCE_CELERY_EXEMPT", "celery_exempt"), ("MAINTENANCE_RQ_EXEMPT_QUEUES", "rq_exempt_queues")],
)
def test_exempt_names_are_a_list_or_a_comma_separated_string(
    make_app: AppFactory, key: str, field: str
) -> None:
    from flask_maintenance import ConfigurationError, Maintenance

    with pytest.raises(ConfigurationError, match=f"{key} must be a list of strings, not 5"):
        make_app(**{key: 5})
    maintenance = Maintenance()
    app = make_app(maintenance, **{key: " mail, tasks.report ,"})
    assert getattr(maintenance.settings(app=app), field) == {"mail", "tasks.report"}


def test_tasks_bound_before_init_celery_and_other_annotations_are_kept(make_app: AppFactory) -> None:
    from celery import Celery

    from flask_maintenance import Maintenance

    maintenance = Maintenance()
    app = make_app(maintenance)
    celery_app = Celery("t", broker="memory://", set_as_current=False)
    celery_app.conf.task_annotations = {"t.early": {"rate_limit": "10/s"}}

    @celery_app.task(name="t.early", shared=False)
    def early() -> str:
        return "ran"

    celery_app.finalize()  # what a worker does first: every task is bound now
    maintenance.init_celery(celery_app, app=app)
    maintenance.enable(app=app)
    assert isinstance(early.apply().result, MaintenanceActive)
    assert early.rate_limit == "10/s"
    maintenance.disable(app=app)
    assert early.apply().get() == "ran"
