"""What the console scripts import: the guard and the switch must start fast on a drowning
machine (issue 18), so the modules that cost most to import stay out of them.

Each command runs as a real subprocess under ``python -X importtime``, which lists every module
it imports; the list is compared with what ``python -c pass`` imports in the same interpreter,
so that a site (or a Python version) that loads one of these modules itself is not our doing.
Nothing here is timed.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_support import GUARD, SWITCH, Project, make_project

#: Modules that the guard and ``flask-maintenance on|off|status --lock-file`` must not import.
HEAVY = (
    "flask",
    "click",
    "werkzeug",
    "dataclasses",
    "inspect",
    "typing",
    "logging",
    "tempfile",
    "shutil",
    "importlib.resources",
    "socket",
    "secrets",
    "threading",
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def imported(project: Project, *argv: str, status: int = 0) -> set[str]:
    """The modules ``python -X importtime ARGV`` imports, after checking its exit status."""
    done = project.run([sys.executable, "-X", "importtime", *argv])
    assert done.returncode == status, done.stderr
    return {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy(project: Project, *argv: str, status: int = 0) -> list[str]:
    """The :data:`HEAVY` modules the command imports that the bare interpreter does not."""
    baseline = imported(project, "-c", "pass")
    return sorted(name for name in HEAVY if name in imported(project, *argv, status=status) - baseline)


def test_the_importtime_listing_is_read(project: Project) -> None:
    # Without this, a change to the listing's format would make every test below pass.
    assert {"flask_maintenance.console", "argparse", "json"} <= imported(
        project, SWITCH, "on", "--lock-file", str(project.lock_file)
    )
    assert "dataclasses" in imported(project, "-c", "import dataclasses")


@pytest.mark.parametrize("command", ["on", "off", "status"])
def test_the_switch_imports_none_of_the_heavy_modules(project: Project, command: str) -> None:
    lock = str(project.lock_file)
    if command != "on":
        assert project.switch("on", "--lock-file", lock, "--for", "1h", "--message", "m").returncode == 0
    assert heavy(project, SWITCH, command, "--lock-file", lock) == []


def test_on_while_on_with_every_option_imports_none_of_them(project: Project) -> None:
    lock = str(project.lock_file)
    assert project.switch("on", "--lock-file", lock).returncode == 0
    until = f"{datetime.now(timezone.utc) + timedelta(days=2):%Y-%m-%dT%H:%M:%SZ}"
    options = ("--mode", "readonly", "--retry", "5m", "--message", "m", "--until", until)
    assert heavy(project, SWITCH, "on", "--lock-file", lock, *options) == []
    assert heavy(project, SWITCH, "status", "--json", "--lock-file", lock) == []


def test_the_guard_imports_none_of_them(project: Project) -> None:
    lock = str(project.lock_file)
    project.lock_file.touch()  # on, with the defaults: the guard skips the command
    assert heavy(project, GUARD, "--quiet", "--lock-file", lock, "--", "true", status=75) == []
    project.switch_on(mode="readonly", message="m")  # a lock with times in it, and a message said
    assert heavy(project, GUARD, "--lock-file", lock, "--", "true", status=75) == []
