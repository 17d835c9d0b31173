"""The pytest plugin, as an app's own test suite uses it: installed, loaded through ``pytest11``.

Each test runs an inner pytest session in a fresh folder with an app of its own; this repo's
``maintenance`` fixture (conftest.py) is not visible there, only the plugin's.
"""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import entry_points

import pytest

from flask_maintenance import Maintenance

pytest_plugins = ["pytester"]

APP_CONFTEST = """
import pytest
from flask import Flask, request

from flask_maintenance import Maintenance

REAL_LOCK = {real_lock!r}


@pytest.fixture(scope="session")
def app():
    app = Flask("orders_app", instance_path={instance!r})
    app.config.update(TESTING=True, SECRET_KEY="inner", MAINTENANCE_LOCK_FILE=REAL_LOCK)
    m = Maintenance(app)

    @app.route("/orders", methods=["GET", "POST"])
    @m.feature("orders")
    def orders():
        if request.method == "POST":
            return "created", 201
        return "orders"

    return app


@pytest.fixture
def client(app):
    return app.test_client()
"""

APP_TESTS = """
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask_maintenance import Maintenance
from flask_maintenance.pytest_plugin import MaintenanceFixture

from conftest import REAL_LOCK


def test_while_readonly_post_orders_gets_503(client, maintenance):
    assert isinstance(maintenance, MaintenanceFixture)
    assert not maintenance.is_active(), "every test starts with maintenance off"
    assert client.post("/orders").status_code == 201
    with maintenance.enabled(mode="readonly") as state:
        assert state.mode == "readonly"
        assert client.post("/orders").status_code == 503
        assert client.get("/orders").status_code == 200
    assert not maintenance.is_active()
    assert client.post("/orders").status_code == 201


def test_the_extension_context_manager_with_app(app, client, maintenance):
    extension = app.extensions["maintenance"]
    assert isinstance(extension, Maintenance)
    with extension.enabled(mode="readonly", app=app):
        assert client.post("/orders").status_code == 503
    assert client.post("/orders").status_code == 201


def test_the_state_lives_in_the_test_folder(app, client, maintenance, tmp_path):
    assert maintenance.lock_file.parent == tmp_path
    assert str(maintenance.lock_file) != REAL_LOCK
    assert app.extensions["maintenance"].backend(app=app).path == str(maintenance.lock_file)
    # Left on at the end on purpose, with a plan beside it: the fixture must clean up.
    maintenance.enable(message="left on")
    maintenance.enable(feature="orders")
    maintenance.schedule(datetime.now(timezone.utc) + timedelta(days=1))
    assert client.post("/orders").status_code == 503
    assert maintenance.lock_file.exists()
    assert Path(str(maintenance.lock_file) + ".plan").exists()


def test_a_feature_and_disable(app, client, maintenance):
    maintenance.enable(feature="orders")
    assert client.get("/orders").status_code == 503
    maintenance.disable(feature="orders")
    assert client.get("/orders").status_code == 200
    maintenance.enable()
    maintenance.disable()
    assert maintenance.status().active is False


def test_afterwards_the_configured_lock_file_is_back(app, client):
    extension = app.extensions["maintenance"]
    assert extension.backend(app=app).path == REAL_LOCK
    real_on = Path(REAL_LOCK).exists()
    assert extension.is_active(app=app) is real_on
    assert client.post("/orders").status_code == (503 if real_on else 201)
    assert extension.status(app=app).features == {}
"""


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("flask_maintenance") == "flask_maintenance.pytest_plugin"


@pytest.mark.slow
@pytest.mark.parametrize("real_state", ["absent", "on in production"])
def test_an_apps_test_suite_uses_the_fixture(pytester: pytest.Pytester, real_state: str) -> None:
    real_dir = pytester.path / "srv" / "instance"
    real_dir.mkdir(parents=True)
    real_lock = real_dir / "maintenance.lock"
    if real_state != "absent":
        real_lock.write_text(json.dumps({"mode": "full", "message": "production is down"}))
    before = (real_lock.read_bytes(), real_lock.stat().st_mtime_ns) if real_lock.exists() else None
    pytester.makeconftest(APP_CONFTEST.format(real_lock=str(real_lock), instance=str(real_dir)))
    pytester.makepyfile(test_orders=APP_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")

    result.assert_outcomes(passed=5)
    after = (real_lock.read_bytes(), real_lock.stat().st_mtime_ns) if real_lock.exists() else None
    assert after == before, "the real lock file was touched"
    assert sorted(p.name for p in real_dir.iterdir()) == ([] if before is None else ["maintenance.lock"])


@pytest.mark.slow
def test_it_needs_the_apps_app_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_no_app="""
        def test_uses_it(maintenance):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'app' not found*"])


@pytest.mark.slow
def test_an_app_without_the_extension_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain_app=textwrap.dedent(
            """
            import pytest
            from flask import Flask

            @pytest.fixture
            def app():
                return Flask("plain")

            def test_uses_it(maintenance):
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*has no Maintenance extension: call Maintenance(app)*"])


def test_this_repos_own_fixture_overrides_the_plugins(maintenance: object) -> None:
    """Inside this suite ``maintenance`` is the extension (conftest.py), not the plugin's object."""
    assert isinstance(maintenance, Maintenance)
