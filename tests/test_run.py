"""Maintenance around a deploy step: `flask maintenance run -- COMMAND` and `with m.window(...)`."""

from __future__ import annotations

import json
import signal
import subprocess
from contextlib import nullcontext
from pathlib import Path

import pytest
from cli_support import FLASK, TIMEOUT, Project, make_project, wait_for_line
from flask import Flask

from flask_maintenance import Maintenance


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def step(project: Project, script: str) -> list[str]:
    """A deploy step as ``sh -c``; "$1" is the lock file, "$2" the real ``flask``, "$3" the markers."""
    return ["sh", "-c", script, "sh", str(project.lock_file), FLASK, str(project.markers)]


# A step that needs the window: it checks that maintenance is on, keeps a copy of the lock file,
# and runs a command that the gate refuses to anyone but `run`'s COMMAND.
MIGRATE = 'test -f "$1" && cp "$1" "$3/lock-during-step" && "$2" db upgrade'


@pytest.mark.slow
class TestRun:
    def test_on_during_command_off_after_success(self, project: Project) -> None:
        options = ["--mode", "readonly", "--retry", "30", "--message", "Upgrading the database"]
        result = project.flask("maintenance", "run", *options, "--", *step(project, MIGRATE))
        assert result.returncode == 0, result.stderr
        assert project.ran("db-upgrade") == 1
        during = json.loads((project.markers / "lock-during-step").read_text())
        assert (during["mode"], during["retry"]) == ("readonly", 30)
        assert during["message"] == "Upgrading the database"
        assert not project.lock_file.exists()
        assert "maintenance is off" in result.stderr.lower()

    def test_the_gated_command_is_refused_outside_run(self, project: Project) -> None:
        # What makes the test above meaningful: the same step without `run` is refused.
        project.switch_on()
        result = project.run(step(project, MIGRATE))
        assert result.returncode == 75
        assert project.ran("db-upgrade") == 0

    @pytest.mark.parametrize("flag", [None, "--keep-on-failure"])
    def test_stays_on_after_failure(self, project: Project, flag: str | None) -> None:
        failing = step(project, 'echo ran >> "$3/step"; exit 3')
        result = project.flask("maintenance", "run", *([flag] if flag else []), "--", *failing)
        assert result.returncode == 3
        assert project.ran("step") == 1
        assert project.lock_file.exists()
        assert "maintenance stays on" in result.stderr.lower()
        assert "maintenance is on" in project.flask("maintenance", "status").stdout.lower()

    def test_off_after_failure_when_asked(self, project: Project) -> None:
        result = project.flask("maintenance", "run", "--off-on-failure", "--", *step(project, "exit 4"))
        assert result.returncode == 4
        assert not project.lock_file.exists()

    def test_already_on_stays_as_it_was(self, project: Project) -> None:
        project.switch_on("full", message="Moving the data centre")
        before = project.lock_file.read_bytes()
        result = project.flask("maintenance", "run", "--mode", "readonly", "--", *step(project, MIGRATE))
        assert result.returncode == 0, result.stderr
        assert project.ran("db-upgrade") == 1
        assert project.lock_file.read_bytes() == before
        assert "already on" in result.stderr

    @pytest.mark.parametrize("flag", [None, "--keep-on-failure", "--off-on-failure"])
    def test_a_command_that_cannot_start_gives_back_the_state_there_was(
        self, project: Project, flag: str | None
    ) -> None:
        args = ["maintenance", "run", *([flag] if flag else []), "--", "no-such-command-anywhere"]
        result = project.flask(*args)
        assert result.returncode == 127
        assert "cannot run no-such-command-anywhere" in result.stderr
        # Nothing ran, so there is nothing to keep the site safe from: off again.
        assert not project.lock_file.exists()
        assert "maintenance is off" in result.stderr.lower()

    @pytest.mark.parametrize(
        ("exit_status", "stays_on"),
        [pytest.param(0, False, id="command-succeeds"), pytest.param(5, True, id="command-fails")],
    )
    def test_sigterm_reaches_the_command_and_the_state_is_settled(
        self, project: Project, exit_status: int, stays_on: bool
    ) -> None:
        script = (
            f'trap \'echo term >> "$3/term"; kill "$sleeper" 2>/dev/null; exit {exit_status}\' TERM; '
            'sleep 30 & sleeper=$!; echo $$ > "$3/ready"; wait "$sleeper"'
        )
        argv = [FLASK, "maintenance", "run", "--", *step(project, script)]
        process = subprocess.Popen(
            argv,
            cwd=project.root,
            env=project.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            command_pid = int(wait_for_line(project.markers / "ready"))
            assert command_pid != process.pid  # COMMAND is a child: only `run` gets the signal
            assert project.lock_file.exists()
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
            process.wait(timeout=TIMEOUT)
        assert process.returncode == exit_status, stderr
        assert (project.markers / "term").read_text() == "term\n"
        assert project.lock_file.exists() is stays_on

    def test_needs_a_command(self, project: Project) -> None:
        result = project.flask("maintenance", "run")
        assert result.returncode == 2
        assert not project.lock_file.exists()

    def test_bad_mode_is_refused_before_switching_on(self, project: Project) -> None:
        job = step(project, 'echo ran >> "$3/step"')
        result = project.flask("maintenance", "run", "--mode", "partial", "--", *job)
        assert result.returncode == 2
        assert "--mode" in result.stderr
        assert project.ran("step") == 0
        assert not project.lock_file.exists()


class TestWindow:
    def test_on_inside_off_after_success(self, app: Flask, maintenance: Maintenance) -> None:
        with maintenance.window(mode="readonly", message="Migrating", app=app) as state:
            assert state.mode == "readonly"
            inside = maintenance.status(app=app)
            assert (inside.active, inside.mode, inside.message) == (True, "readonly", "Migrating")
        assert not maintenance.is_active(app=app)

    def test_stays_on_after_an_exception(self, app: Flask, maintenance: Maintenance) -> None:
        failing = pytest.raises(RuntimeError, match="migration failed")
        with failing, maintenance.window(mode="readonly", app=app):
            raise RuntimeError("migration failed")
        assert maintenance.status(app=app).mode == "readonly"

    def test_stays_on_after_an_interrupt(self, app: Flask, maintenance: Maintenance) -> None:
        with pytest.raises(KeyboardInterrupt), maintenance.window(app=app):
            raise KeyboardInterrupt
        assert maintenance.is_active(app=app)

    def test_off_after_an_exception_when_asked(self, app: Flask, maintenance: Maintenance) -> None:
        with pytest.raises(RuntimeError), maintenance.window(mode="readonly", off_on_failure=True, app=app):
            raise RuntimeError("migration failed")
        assert not maintenance.is_active(app=app)

    @pytest.mark.parametrize("fails", [False, True])
    def test_already_on_is_left_untouched(self, app: Flask, maintenance: Maintenance, fails: bool) -> None:
        maintenance.enable(mode="full", message="Moving the data centre", app=app)
        lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
        before = lock.read_bytes()
        with (
            pytest.raises(RuntimeError) if fails else nullcontext(),
            maintenance.window(mode="readonly", off_on_failure=True, app=app) as state,
        ):
            assert (state.mode, state.message) == ("full", "Moving the data centre")
            if fails:
                raise RuntimeError("step failed")
        assert lock.read_bytes() == before

    def test_uses_current_app(self, app: Flask, maintenance: Maintenance) -> None:
        with app.app_context():
            with maintenance.window():
                assert maintenance.is_active()
            assert not maintenance.is_active()
