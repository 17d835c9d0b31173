"""Shared fixtures: an app factory in a temporary instance folder, and a real `flask` runner."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis.configuration import set_hypothesis_home_dir

import flask_maintenance.cache
import flask_maintenance.times
import flask_maintenance.workers
from flask_maintenance import Maintenance

AppFactory = Callable[..., Flask]

#: The keys of the public status document, the contract of MAINTENANCE_STATUS_PATH.
STATUS_KEYS = {
    "active",
    "mode",
    "message",
    "messages",
    "retry_after",
    "overdue",
    "started_at",
    "ends_at",
    "scheduled",
    "features",
}

# Hypothesis keeps its caches in ./.hypothesis by default; the tests never write into the repo.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "flask-maintenance-hypothesis")


def pytest_addoption(parser: pytest.Parser) -> None:
    # The one way the tests may write into the repository, and only when asked.
    parser.addoption(
        "--update-screenshots",
        action="store_true",
        help="write the browser tests' screenshots into docs/screenshots/ (default: a temporary folder)",
    )


@pytest.fixture(autouse=True)
def _heartbeats_end_with_the_test() -> Iterator[None]:
    """An app that serves a request starts its heartbeat thread (flask_maintenance.workers):
    end it with the test, so that no thread writes beside another test's lock file or calls a
    function that another test patched."""
    yield
    flask_maintenance.workers.stop_all()


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    """Build a small app whose instance folder (and so lock file) lives in ``tmp_path``.

    Keyword arguments become config values; ``MAINTENANCE_CHECK_INTERVAL`` defaults to 0 here so
    that a test sees its own switches at once (tests of the cache set it themselves).
    """

    def factory(extension: Maintenance | None = None, **config: Any) -> Flask:
        app = Flask("testapp", instance_path=str(tmp_path / "instance"))
        app.config.update(SECRET_KEY="test-secret", MAINTENANCE_CHECK_INTERVAL=0)
        app.config.update(config)

        @app.get("/")
        def index() -> str:
            return "home page"

        @app.route("/form", methods=["GET", "POST"])
        def form() -> str:
            return "form saved"

        @app.route("/api/items", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def items() -> dict[str, Any]:
            return {"items": []}

        @app.get("/health/live")
        def live() -> str:
            return "alive"

        (extension or Maintenance()).init_app(app)
        return app

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def maintenance(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


@pytest.fixture
def lock_file(app: Flask) -> Path:
    return Path(app.config["MAINTENANCE_LOCK_FILE"])


@pytest.fixture
def app_module(tmp_path: Path) -> Iterator[Path]:
    """A real app module on disk for `flask` subprocesses.

    Its lock file is ``tmp_path/maintenance.lock``, or the ``SUBJECT_LOCK_FILE`` environment
    variable when a test sets it (to point the real CLI at a path it cannot write).
    """
    source = f"""
import os

from flask import Flask
from flask_maintenance import Maintenance

app = Flask(__name__, instance_path={str(tmp_path / "instance")!r})
app.config["SECRET_KEY"] = "subprocess-secret"
app.config["MAINTENANCE_LOCK_FILE"] = os.environ.get(
    "SUBJECT_LOCK_FILE", {str(tmp_path / "maintenance.lock")!r}
)
maintenance = Maintenance(app)


@app.get("/")
def index():
    return "home page"
"""
    module = tmp_path / "subject_app.py"
    module.write_text(source)
    yield module


@pytest.fixture
def run_flask(app_module: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``flask`` command against :func:`app_module` and capture its output."""

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "FLASK_APP": app_module.stem, "PYTHONPATH": str(app_module.parent)}
        full_env.pop("FLASK_MAINTENANCE_FORCE", None)
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=app_module.parent,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


class Clock:
    """The state caches' clocks, moving only when a test says so.

    Calling it gives monotonic seconds; :meth:`utcnow` gives the matching wall-clock time, which
    decides when scheduled windows start and end.
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall_start = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> float:
        return self.now

    def utcnow(self) -> datetime:
        return self.wall_start + timedelta(seconds=self.now - 1000.0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The clocks of every state cache built after this fixture (request it before the app)."""
    fake = Clock()
    monkeypatch.setattr(flask_maintenance.cache, "monotonic", fake)
    monkeypatch.setattr(flask_maintenance.times, "utcnow", fake.utcnow)
    return fake
