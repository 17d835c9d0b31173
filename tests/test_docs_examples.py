"""The docs' examples do what the docs say they do.

Each file in ``docs/examples/`` is copied into a temporary folder and imported (or run) from
there, so its instance folder and lock file live in ``tmp_path``; the test then checks the
behaviour the page around the example promises, through the test client, the CLI runner or real
subprocesses. The README's smallest example, the generated nginx snippets and the Guarantees
page's test names are checked against their sources too, so none of them can drift.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest
from conftest import Clock
from flask import Flask

from flask_maintenance import Maintenance, MaintenanceActive, request_blocked

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
TIMEOUT = 60

LoadExample = Callable[[str], ModuleType]


@pytest.fixture
def load_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadExample:
    """Import ``docs/examples/<name>.py`` from a copy in ``tmp_path`` (its instance folder too)."""

    def load(name: str) -> ModuleType:
        source = tmp_path / f"{name}.py"
        shutil.copy(EXAMPLES / f"{name}.py", source)
        spec = importlib.util.spec_from_file_location(name, source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # Flask finds the app's root and instance folder through sys.modules; undone after.
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load


def run_flask(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``flask`` command, run in ``tmp_path`` as a reader of the docs would."""
    env = {key: value for key, value in os.environ.items() if key != "FLASK_MAINTENANCE_FORCE"}
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def extension_of(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


class TestQuickstart:
    def test_the_readme_shows_the_tested_smallest_example(self) -> None:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        assert blocks, "the README has no Python example"
        assert blocks[0] == (EXAMPLES / "hello.py").read_text(encoding="utf-8")

    def test_hello_answers_503_with_retry_after_once_on_and_200_once_off(
        self, clock: Clock, load_example: LoadExample, tmp_path: Path
    ) -> None:
        shutil.copy(EXAMPLES / "hello.py", tmp_path)
        on = run_flask(tmp_path, "--app", "hello", "maintenance", "on", "--retry", "30")
        assert on.returncode == 0, on.stderr
        lines = on.stdout.splitlines()
        assert lines[0] == "Maintenance is ON (mode full)"
        assert "  retry after:  30 s" in lines
        assert "  message:      (default)" in lines
        assert lines[-1] == f"  backend:      file {tmp_path / 'instance' / 'maintenance.lock'}"

        client = load_example("hello").app.test_client()
        page = client.get("/")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "30"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.mimetype == "text/html"
        problem = client.get("/", headers={"Accept": "application/json"})
        assert problem.status_code == 503
        assert problem.mimetype == "application/problem+json"
        assert problem.json is not None
        assert problem.json["retry_after"] == 30
        assert client.head("/").data == b""

        status = run_flask(tmp_path, "--app", "hello", "maintenance", "status")
        assert status.returncode == 0 and status.stdout.startswith(on.stdout)  # then the workers
        off = run_flask(tmp_path, "--app", "hello", "maintenance", "off")
        assert off.returncode == 0, off.stderr
        assert off.stdout.splitlines()[0] == "Maintenance is OFF"
        assert client.get("/").status_code == 503  # this process still holds its reading
        clock.advance(1.0)  # MAINTENANCE_CHECK_INTERVAL, one second by default
        assert client.get("/").data == b"Hello!"

    def test_the_factory_sets_up_each_app_it_builds_on_one_switch(
        self, clock: Clock, load_example: LoadExample
    ) -> None:
        factory = load_example("factory")
        first, second = factory.create_app(), factory.create_app()
        assert "maintenance" in first.cli.commands and "maintenance" in second.cli.commands
        assert second.test_client().get("/").status_code == 404  # off, and no such route
        factory.maintenance.enable(app=first)
        # The same settings, so the same lock file: both apps follow the one switch.
        assert first.test_client().get("/").status_code == 503
        clock.advance(1.0)  # the other app notices within MAINTENANCE_CHECK_INTERVAL
        assert second.test_client().get("/").status_code == 503


class TestModes:
    def test_a_feature_switched_off_refuses_its_views_and_blueprints_only(
        self, load_example: LoadExample
    ) -> None:
        features = load_example("features")
        app, maintenance = features.app, features.maintenance
        client = app.test_client()
        maintenance.enable(feature="payments", message="Payments are being moved", app=app)
        checkout = client.post("/checkout", headers={"Accept": "application/json"})
        assert checkout.status_code == 503
        assert checkout.json is not None
        assert checkout.json["title"] == "payments is temporarily unavailable"
        assert checkout.json["detail"] == "Payments are being moved"
        assert checkout.json["feature"] == "payments"
        assert client.get("/billing/invoices").status_code == 503
        assert client.get("/shop/").data == b"The catalogue"

        maintenance.disable(feature="payments", app=app)
        maintenance.enable(feature="shop", app=app)
        assert client.get("/shop/").status_code == 503
        assert client.post("/checkout").data == b"Paid"

        maintenance.enable(feature="reports", app=app)
        refused = client.get("/reports/sales", headers={"Accept": "application/json"})
        assert refused.status_code == 503
        assert refused.json is not None and refused.json["feature"] == "reports"
        assert sorted(maintenance.known_features(app=app)) == ["billing", "payments", "reports", "shop"]

    def test_a_planned_window_is_shown_and_announced_in_the_banner_header(
        self, load_example: LoadExample, tmp_path: Path
    ) -> None:
        shutil.copy(EXAMPLES / "features.py", tmp_path)
        start = (datetime.now(timezone.utc) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(minutes=30)
        planned = run_flask(
            tmp_path,
            "--app",
            "features",
            "maintenance",
            "schedule",
            "--at",
            f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "--for",
            "30m",
            "--message",
            "Database upgrade",
            "--auto-off",
        )
        assert planned.returncode == 0, planned.stderr
        assert planned.stdout.splitlines()[:2] == [
            "Maintenance is OFF",
            f"  scheduled:    {start:%Y-%m-%dT%H:%M:%SZ} until {end:%Y-%m-%dT%H:%M:%SZ} (mode full, ends by itself)",
        ]
        response = load_example("features").app.test_client().get("/shop/")
        assert response.status_code == 200
        assert response.headers["X-Maintenance-Banner"] == (
            f"Scheduled maintenance at {start:%Y-%m-%d %H:%M} UTC until {end:%Y-%m-%d %H:%M} UTC: Database upgrade"
        )
        cancelled = run_flask(tmp_path, "--app", "features", "maintenance", "cancel")
        assert cancelled.stdout.splitlines()[:2] == [
            f"Cancelled the window planned at {start:%Y-%m-%dT%H:%M:%SZ}",
            "Maintenance is OFF",
        ]


class TestAdmins:
    def test_each_way_through_and_no_other(self, load_example: LoadExample) -> None:
        admins = load_example("admins")
        app = admins.app
        admins.maintenance.enable(app=app)
        client = app.test_client()
        assert client.get("/").status_code == 503
        # ProxyFix trusts one proxy: the test client is that proxy, the header names the client.
        assert client.get("/", headers={"X-Forwarded-For": "203.0.113.7"}).data == b"Hello!"
        assert client.get("/", headers={"X-Forwarded-For": "10.8.20.1"}).status_code == 200
        assert client.get("/", headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 503
        with client.session_transaction() as session:
            session["admin"] = True
        assert client.get("/").status_code == 200

    def test_the_secret_link_lets_its_holder_through(self, load_example: LoadExample) -> None:
        admins = load_example("admins")
        app = admins.app
        admins.maintenance.enable(secret="a-long-enough-secret-token", app=app)
        client = app.test_client()
        assert client.get("/_maintenance/bypass/wrong-token").status_code == 403
        link = client.get("/_maintenance/bypass/a-long-enough-secret-token?next=/")
        assert link.status_code == 303 and link.headers["Location"] == "/"
        assert client.get("/").data == b"Hello!"
        admins.maintenance.enable(secret="another-long-secret-token", app=app)  # rotated
        assert client.get("/").status_code == 503  # the old cookie no longer works


class TestProxies:
    def test_liveness_is_served_and_readiness_refused_in_the_example_app(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.syspath_prepend(str(ROOT))  # the example app lives beside the package
        example_app = importlib.import_module("example_app")

        app = example_app.create_app(instance_path=str(tmp_path))
        extension_of(app).enable(app=app)
        client = app.test_client()
        assert client.get("/health/live").json == {"status": "alive"}
        assert client.get("/health/ready").status_code == 503
        assert client.get("/health/lively").status_code == 503  # prefixes match whole segments

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (("--page", "/srv/shop/maintenance.html"), "shop-maintenance.conf"),
            (("--http",), "shop-maintenance-geo.conf"),
        ],
    )
    def test_the_nginx_snippets_shown_are_what_nginx_config_prints(
        self, load_example: LoadExample, args: tuple[str, ...], expected: str
    ) -> None:
        app = load_example("shop").app
        result = app.test_cli_runner().invoke(args=["maintenance", "nginx-config", *args])
        assert result.exit_code == 0, result.output
        assert result.stdout == (EXAMPLES / "nginx" / expected).read_text(encoding="utf-8")

    def test_the_haproxy_configuration_shown_is_what_haproxy_config_prints(
        self, load_example: LoadExample, tmp_path: Path
    ) -> None:
        app = load_example("shop").app
        servers = ["--server", "10.0.0.11:8000", "--server", "10.0.0.12:8000"]
        args = [
            "maintenance",
            "haproxy-config",
            "--bind",
            ":80",
            *servers,
            "--page",
            str(tmp_path / "shop.http"),
        ]
        result = app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
        shown = (EXAMPLES / "haproxy" / "shop-haproxy.cfg").read_text(encoding="utf-8")
        assert result.stdout.replace(str(tmp_path), "/etc/haproxy/errors") == shown


class TestBackground:
    def test_commands_and_guarded_functions_wait_while_on(self, load_example: LoadExample) -> None:
        background = load_example("background")
        app, maintenance = background.app, background.maintenance
        runner = app.test_cli_runner()
        assert runner.invoke(args=["send-reminders"]).output == "reminders sent\n"
        assert background.sync_invoices() == "invoices synced"
        assert background.rebuild_search_index() == "index rebuilt"

        maintenance.enable(mode="readonly", app=app)
        refused = runner.invoke(args=["send-reminders"])
        assert refused.exit_code == 75
        assert "`send-reminders` did not run" in refused.stderr
        assert runner.invoke(args=["warm-cache"]).output == "cache warmed\n"
        with app.app_context():
            assert background.send_reminders() is None
            with pytest.raises(MaintenanceActive):
                background.sync_invoices()
        with pytest.raises(MaintenanceActive):
            background.rebuild_search_index()

    def test_the_script_skips_while_the_lock_file_exists(self, tmp_path: Path) -> None:
        shutil.copy(EXAMPLES / "nightly_export.py", tmp_path)
        lock = tmp_path / "maintenance.lock"
        env = {**os.environ, "MAINTENANCE_LOCK_FILE": str(lock)}
        env.pop("FLASK_MAINTENANCE_FORCE", None)

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "nightly_export.py"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
            )

        assert run().stdout == "exported\n"
        lock.touch()  # an empty lock file is full maintenance
        skipped = run()
        assert skipped.returncode == 0 and skipped.stdout == ""

    def test_the_window_is_on_during_the_step_and_off_after_success_only(
        self, load_example: LoadExample, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deploy = load_example("deploy")
        app, maintenance = deploy.app, deploy.maintenance
        seen = []
        monkeypatch.setattr(deploy, "upgrade", lambda: seen.append(maintenance.status(app=app)))
        deploy.deploy()
        assert seen[0].mode == "readonly" and seen[0].message == "Upgrading the database"
        assert not maintenance.is_active(app=app)

        def failing_upgrade() -> None:
            raise RuntimeError("migration failed")

        monkeypatch.setattr(deploy, "upgrade", failing_upgrade)
        with pytest.raises(RuntimeError):
            deploy.deploy()
        assert maintenance.status(app=app).mode == "readonly"  # stays on after a failure


class TestApi:
    def test_the_tour_switches_on_and_leaves_it_off(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        script = tmp_path / "api_tour.py"
        shutil.copy(EXAMPLES / "api_tour.py", script)
        monkeypatch.chdir(tmp_path)  # run as a script: Flask finds the instance folder from here
        runpy.run_path(str(script), run_name="__main__")
        printed = capsys.readouterr().out.splitlines()
        assert printed[0].startswith("readonly 120 Moving to a new database ")
        assert "'mode': 'readonly'" in printed[1]
        assert not (tmp_path / "instance" / "maintenance.lock").exists()

    def test_the_signal_counts_refusals_by_reason(self, load_example: LoadExample) -> None:
        signals = load_example("signals")
        app, maintenance = signals.app, signals.maintenance
        client = app.test_client()
        try:
            maintenance.enable(app=app)
            assert client.get("/").status_code == 503
            maintenance.enable(mode="readonly", app=app)
            assert client.get("/").status_code == 200
            assert client.post("/").status_code == 503
            assert signals.refusals == {"maintenance": 1, "readonly": 1}
        finally:
            # While the signal has any receiver the fast path steps aside for every app: a
            # receiver left behind would change what later tests measure.
            request_blocked.disconnect(signals.count_refusal)
        assert not request_blocked.receivers

    def test_the_fleet_reads_its_redis_url_and_never_shows_the_password(
        self, load_example: LoadExample, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # No Redis is needed: init_app validates the URL without connecting.
        monkeypatch.setenv("MAINTENANCE_BACKEND", "redis://:s3cret-password@127.0.0.1:6379/0")
        app = load_example("fleet").app
        where = extension_of(app).backend(app=app).describe()
        assert where == "redis redis://127.0.0.1:6379/0 key shop:maintenance"


def run_pytest_in(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """A reader's own test suite, copied into ``project``, run by a real pytest."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(project), *options],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.mark.slow  # a pytest process
def test_the_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "testing", project)
    result = run_pytest_in(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


@pytest.mark.slow  # a pytest process and a live server
def test_the_live_server_example_passes_under_pytest(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES / "testing_live", project)
    shutil.copy(EXAMPLES / "testing" / "orders.py", project)
    # pytest-flask's server listens on localhost by default; tests bind the loopback address only.
    result = run_pytest_in(project, "--live-server-host", "127.0.0.1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_guarantees_name_tests_that_exist() -> None:
    page = (DOCS / "guarantees.rst").read_text(encoding="utf-8")
    references = re.findall(r"``(tests/[\w/]+\.py)((?:::\w+)*)``", page)
    assert len(references) > 20
    for path, names in references:
        source = ROOT / path
        assert source.is_file(), path
        scope: list[ast.stmt] = ast.parse(source.read_text(encoding="utf-8")).body
        for name in names.split("::")[1:]:
            found = [
                node
                for node in scope
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name
            ]
            assert found, f"{path}{names}: no {name}"
            scope = found[0].body if isinstance(found[0], ast.ClassDef) else []
