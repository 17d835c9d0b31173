"""A project on disk for real `flask`, `flask-maintenance` and `flask-maintenance-guard` subprocesses.

The project has an app with one command of every kind Flask can resolve (an app command, a
blueprint's, a group's subcommand, a Flask-Migrate-style group added with ``add_command``, and a
command an installed package registers through the ``flask.commands`` entry point). Every command
body appends ``ran`` to a marker file named after it, so a test can tell "never ran" from "ran
once".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flask_maintenance.backends import FileBackend
from flask_maintenance.model import State
from flask_maintenance.times import utcnow

# The console scripts installed next to the interpreter running the tests.
BIN = Path(sys.executable).parent
FLASK = str(BIN / "flask")
GUARD = str(BIN / "flask-maintenance-guard")
SWITCH = str(BIN / "flask-maintenance")

#: Every wait in these tests is bounded by this many seconds.
TIMEOUT = 20.0

APP_MODULE = "cli_subject"

APP_SOURCE = '''
import os

import click
from flask import Blueprint, Flask
from flask.cli import with_appcontext

from flask_maintenance import Maintenance


def mark(name):
    with open(os.path.join(os.environ["SUBJECT_MARKERS"], name), "a") as marker:
        marker.write("ran\\n")


app = Flask(__name__, instance_path=os.path.join(os.path.dirname(__file__), "instance"))
app.config["SECRET_KEY"] = "cli-subject-secret"
app.config["MAINTENANCE_LOCK_FILE"] = os.environ["SUBJECT_LOCK_FILE"]
for key in ("MAINTENANCE_CLI_EXEMPT", "MAINTENANCE_CLI_BLOCK_MODES"):
    if "SUBJECT_" + key in os.environ:  # comma-separated, as an operator would set it
        app.config[key] = os.environ["SUBJECT_" + key]
maintenance = Maintenance(app)


@app.cli.command("hello")
def hello():
    """An app command."""
    mark("hello")


reports = Blueprint("reports", __name__)


@reports.cli.command("build")
def build_report():
    """A blueprint command."""
    mark("reports-build")


app.register_blueprint(reports)


@app.cli.group("jobs")
def jobs():
    """A group of the app."""
    mark("jobs-group")


@jobs.command("sync")
def sync_jobs():
    """A group's subcommand."""
    mark("jobs-sync")


@click.group()
def db():
    """Like Flask-Migrate's group: plain Click, added to app.cli by another extension."""


@db.command()
@with_appcontext
def upgrade():
    mark("db-upgrade")


@db.command()
@with_appcontext
def downgrade():
    mark("db-downgrade")


app.cli.add_command(db, name="db")


@maintenance.exempt
@app.cli.command("warm-cache")
def warm_cache():
    """Exempt by marking the command."""
    mark("warm-cache")


@app.cli.command("ping")
@maintenance.exempt
def ping():
    """Exempt by marking the callback."""
    mark("ping")
'''

PLUGIN_SOURCE = '''
import os

import click
from flask.cli import with_appcontext


@click.command("plug-sync")
@with_appcontext
def plug_sync():
    """A command an installed package registers through the flask.commands entry point."""
    with open(os.path.join(os.environ["SUBJECT_MARKERS"], "plug-sync"), "a") as marker:
        marker.write("ran\\n")
'''

BROKEN_APP_SOURCE = """
import os

# Leave a trace of the import, then fail like an app with a broken dependency.
with open(os.path.join(os.environ["SUBJECT_MARKERS"], "broken-app-imported"), "a") as marker:
    marker.write("ran\\n")
raise RuntimeError("the database driver is missing")
"""


@dataclass
class Project:
    """Paths of one project in a temporary folder, and ways to run its real commands."""

    root: Path

    @property
    def lock_file(self) -> Path:
        return self.root / "maintenance.lock"

    @property
    def markers(self) -> Path:
        return self.root / "markers"

    @property
    def site(self) -> Path:
        return self.root / "site"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a subprocess: nothing inherited that changes the outcome."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"FLASK_MAINTENANCE_FORCE", "MAINTENANCE_LOCK_FILE", "FLASK_APP", "PYTHONSTARTUP"}
        }
        env.update(
            FLASK_APP=APP_MODULE,
            PYTHONPATH=os.pathsep.join([str(self.site), str(self.root)]),
            SUBJECT_LOCK_FILE=str(self.lock_file),
            SUBJECT_MARKERS=str(self.markers),
        )
        env.update(extra or {})
        return env

    def run(
        self, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            cwd=self.root,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def flask(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``flask`` console script against the project's app."""
        return self.run([FLASK, *args], env)

    def guard(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``flask-maintenance-guard`` console script."""
        return self.run([GUARD, *args], env)

    def switch(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``flask-maintenance`` console script (no Flask, no app)."""
        return self.run([SWITCH, *args], env)

    def switch_on(self, mode: str = "full", message: str | None = None) -> None:
        """Write the lock file the way ``flask maintenance on`` does."""
        state = State(active=True, mode=mode, message=message, started_at=utcnow().replace(microsecond=0))
        FileBackend(self.lock_file).write(state.to_json())

    def switch_off(self) -> None:
        FileBackend(self.lock_file).clear()

    def ran(self, name: str) -> int:
        """How many times the command writing marker ``name`` ran its body."""
        try:
            text = (self.markers / name).read_text()
        except FileNotFoundError:
            return 0
        assert set(text.splitlines()) <= {"ran"}, text
        return len(text.splitlines())

    def marker_path(self, name: str) -> str:
        return str(self.markers / name)


def make_project(root: Path) -> Project:
    """Write the app, a broken app and an installed plugin package under ``root``."""
    project = Project(root)
    project.markers.mkdir(parents=True)
    (root / f"{APP_MODULE}.py").write_text(APP_SOURCE)
    (root / "broken_app.py").write_text(BROKEN_APP_SOURCE)
    package = project.site / "plugpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN_SOURCE)
    dist_info = project.site / "plugpkg-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugpkg\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[flask.commands]\nplug-sync = plugpkg:plug_sync\n")
    return project


def assert_refused(result: subprocess.CompletedProcess[str], mode: str = "full") -> str:
    """Exit 75 and exactly one line on stderr naming the state and the override."""
    assert result.returncode == 75, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"maintenance is on (mode {mode}" in lines[0]
    assert "FLASK_MAINTENANCE_FORCE=1" in lines[0]
    assert result.stdout == ""
    return lines[0]


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def wait_for_line(path: Path, timeout: float = TIMEOUT) -> str:
    """The first complete line written to ``path``, waiting at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n"):
            return text.strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written within {timeout} s")
