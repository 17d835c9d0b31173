"""Background work: `@m.guard`, `skip_during_maintenance`, and the `flask-maintenance-guard` script."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_support import GUARD, TIMEOUT, Project, assert_one_line_error, make_project, wait_for_line
from flask import Flask

import flask_maintenance
from flask_maintenance import ConfigurationError, Maintenance, MaintenanceActive
from flask_maintenance.guard import skip_during_maintenance

AppFactory = Callable[..., Flask]

# -- in-process: the decorator and the context manager ----------------------------------------


class Calls:
    """A job that records its calls, as a scheduler task would do its work."""

    def __init__(self) -> None:
        self.args: list[int] = []

    def __call__(self, n: int) -> str:
        self.args.append(n)
        return f"done {n}"


def skipped_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("skipped")]


class TestExtensionGuard:
    def test_bare_decorator(
        self, app: Flask, maintenance: Maintenance, caplog: pytest.LogCaptureFixture
    ) -> None:
        work = Calls()

        @maintenance.guard
        def nightly_report(n: int) -> str:
            return work(n)

        assert nightly_report.__name__ == "nightly_report"
        assert nightly_report(1) == "done 1"
        maintenance.enable(app=app)
        with caplog.at_level(logging.INFO, logger="flask_maintenance"):
            assert nightly_report(2) is None
        (line,) = skipped_lines(caplog)
        assert "nightly_report" in line
        assert "maintenance is on (mode full" in line
        maintenance.disable(app=app)
        assert nightly_report(3) == "done 3"
        assert work.args == [1, 3]

    def test_with_parentheses_inside_an_app_context(self, app: Flask, maintenance: Maintenance) -> None:
        work = Calls()
        guarded = maintenance.guard()(work)
        with app.app_context():
            maintenance.enable(mode="readonly")
            assert guarded(1) is None
            maintenance.disable()
            assert guarded(2) == "done 2"
        assert work.args == [2]

    def test_raise_instead_of_returning_none(self, app: Flask, maintenance: Maintenance) -> None:
        work = Calls()
        guarded = maintenance.guard(raise_=True)(work)
        assert guarded(1) == "done 1"
        maintenance.enable(mode="readonly", app=app)
        with pytest.raises(MaintenanceActive) as raised:
            guarded(2)
        assert raised.value.state.mode == "readonly"  # type: ignore[attr-defined]
        assert work.args == [1]

    def test_as_context_manager(self, app: Flask, maintenance: Maintenance) -> None:
        with maintenance.guard(app=app):
            pass
        maintenance.enable(app=app)
        entered = False
        with pytest.raises(MaintenanceActive), maintenance.guard(app=app):
            entered = True
        assert not entered

    def test_banner_does_not_stop_work(self, app: Flask, maintenance: Maintenance) -> None:
        work = Calls()
        maintenance.enable(mode="banner", app=app)
        assert maintenance.guard(work)(1) == "done 1"

    def test_banner_does_not_stop_work_even_when_listed(self, make_app: AppFactory) -> None:
        m = Maintenance()
        app = make_app(m, MAINTENANCE_CLI_BLOCK_MODES=("full", "readonly", "banner"))
        m.enable(mode="banner", app=app)
        assert m.guard(Calls())(1) == "done 1"

    def test_follows_cli_block_modes(self, make_app: AppFactory) -> None:
        m = Maintenance()
        app = make_app(m, MAINTENANCE_CLI_BLOCK_MODES=("full",))
        work = Calls()
        guarded = m.guard(work)
        m.enable(mode="readonly", app=app)
        assert guarded(1) == "done 1"
        m.enable(mode="full", app=app)
        assert guarded(2) is None
        assert work.args == [1]

    def test_force_environment_variable(
        self, app: Flask, maintenance: Maintenance, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        work = Calls()
        maintenance.enable(app=app)
        monkeypatch.setenv("FLASK_MAINTENANCE_FORCE", "1")
        assert maintenance.guard(work)(1) == "done 1"


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "jobs" / "maintenance.lock"


def switch_on(lock: Path, mode: str = "full") -> None:
    app = Flask("writer", instance_path=str(lock.parent))
    app.config["MAINTENANCE_LOCK_FILE"] = str(lock)
    Maintenance(app).enable(mode=mode, app=app)


class TestSkipDuringMaintenance:
    def test_is_public(self) -> None:
        # The issue names it `flask_maintenance.skip_during_maintenance`.
        assert flask_maintenance.skip_during_maintenance is skip_during_maintenance

    def test_lock_file(self, lock: Path, caplog: pytest.LogCaptureFixture) -> None:
        work = Calls()
        guarded = skip_during_maintenance(lock_file=lock)(work)
        assert guarded(1) == "done 1"
        switch_on(lock, "readonly")
        with caplog.at_level(logging.INFO, logger="flask_maintenance"):
            assert guarded(2) is None
        (line,) = skipped_lines(caplog)
        assert "maintenance is on (mode readonly" in line
        lock.unlink()
        assert guarded(3) == "done 3"
        assert work.args == [1, 3]

    def test_lock_file_banner_does_not_stop_work(self, lock: Path) -> None:
        switch_on(lock, "banner")
        assert skip_during_maintenance(lock_file=lock)(Calls())(1) == "done 1"

    def test_lock_file_from_environment(self, lock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAINTENANCE_LOCK_FILE", str(lock))
        work = Calls()
        guarded = skip_during_maintenance()(work)
        switch_on(lock)
        assert guarded(1) is None
        lock.unlink()
        assert guarded(2) == "done 2"
        assert work.args == [2]

    def test_app(self, app: Flask, maintenance: Maintenance) -> None:
        work = Calls()
        guarded = skip_during_maintenance(app=app)(work)
        maintenance.enable(app=app)
        assert guarded(1) is None
        maintenance.disable(app=app)
        assert guarded(2) == "done 2"
        assert work.args == [2]

    def test_raise(self, lock: Path) -> None:
        work = Calls()
        guarded = skip_during_maintenance(lock_file=lock, raise_=True)(work)
        switch_on(lock)
        with pytest.raises(MaintenanceActive):
            guarded(1)
        assert work.args == []

    def test_as_context_manager(self, lock: Path) -> None:
        with skip_during_maintenance(lock_file=lock):
            pass
        switch_on(lock)
        entered = False
        with pytest.raises(MaintenanceActive), skip_during_maintenance(lock_file=lock):
            entered = True
        assert not entered

    def test_needs_a_lock_file_or_an_app(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("MAINTENANCE_LOCK_FILE", raising=False)
        with pytest.raises(ConfigurationError, match="MAINTENANCE_LOCK_FILE"):
            skip_during_maintenance()
        with pytest.raises(ConfigurationError, match="no Maintenance extension"):
            skip_during_maintenance(app=Flask("bare"))


# -- the console script ----------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def writes_marker(project: Project, name: str = "job") -> list[str]:
    """A cron job that leaves a marker when it runs."""
    return ["sh", "-c", 'echo ran >> "$1"', "sh", project.marker_path(name)]


def assert_skipped(result: subprocess.CompletedProcess[str], status: int = 75, mode: str = "full") -> None:
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flask-maintenance-guard: ")
    assert f"maintenance is on (mode {mode}" in lines[0]
    assert "FLASK_MAINTENANCE_FORCE=1" in lines[0]
    assert result.stdout == ""


@pytest.mark.slow
class TestGuardScript:
    def test_lock_file_on_skips_off_runs(self, project: Project) -> None:
        lock = str(project.lock_file)
        project.switch_on()
        assert_skipped(project.guard("--lock-file", lock, "--", *writes_marker(project)))
        assert project.ran("job") == 0

        project.switch_off()
        result = project.guard("--lock-file", lock, "--", *writes_marker(project))
        assert (result.returncode, result.stderr) == (0, "")
        assert project.ran("job") == 1

    def test_readonly_skips_banner_runs(self, project: Project) -> None:
        lock = str(project.lock_file)
        project.switch_on("readonly")
        assert_skipped(project.guard("--lock-file", lock, "--", *writes_marker(project)), mode="readonly")
        project.switch_on("banner")
        assert project.guard("--lock-file", lock, "--", *writes_marker(project)).returncode == 0
        assert project.ran("job") == 1

    def test_exit_status_of_the_command(self, project: Project) -> None:
        result = project.guard("--lock-file", str(project.lock_file), "--", "sh", "-c", "echo out; exit 3")
        assert (result.returncode, result.stdout) == (3, "out\n")

    def test_replaces_itself_and_signals_reach_the_command(self, project: Project) -> None:
        ready = project.root / "ready"
        script = (
            'trap \'echo term >> "$1"; kill "$sleeper" 2>/dev/null; exit 0\' TERM; '
            'sleep 30 & sleeper=$!; echo $$ > "$2"; wait "$sleeper"'
        )
        argv = [GUARD, "--lock-file", str(project.lock_file), "--", "sh", "-c", script, "sh"]
        argv += [project.marker_path("term"), str(ready)]
        process = subprocess.Popen(argv, cwd=project.root, env=project.env(), stdin=subprocess.DEVNULL)
        try:
            # The command's own pid is the guard's: it exec'd, no wrapper in between.
            assert int(wait_for_line(ready)) == process.pid
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=TIMEOUT) == 0
        finally:
            process.kill()
            process.wait(timeout=TIMEOUT)
        assert (project.markers / "term").read_text() == "term\n"

    def test_ctrl_c_while_the_app_loads_runs_nothing_and_shows_no_traceback(self, project: Project) -> None:
        loading = project.root / "loading"
        (project.root / "slow_app.py").write_text(
            f"import time\nopen({str(loading)!r}, 'w').write('loading\\n')\ntime.sleep(30)\n"
        )
        argv = [GUARD, "--app", "slow_app", "--", *writes_marker(project)]
        process = subprocess.Popen(
            argv,
            cwd=project.root,
            env=project.env(),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_for_line(loading) == "loading"
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
            process.wait(timeout=TIMEOUT)
        assert (process.returncode, err) == (130, "\nAborted!\n")
        assert project.ran("job") == 0

    def test_skip_exit_code(self, project: Project) -> None:
        project.switch_on()
        lock = str(project.lock_file)
        result = project.guard("--lock-file", lock, "--skip-exit-code", "0", "--", *writes_marker(project))
        assert_skipped(result, status=0)
        assert project.ran("job") == 0

    def test_quiet(self, project: Project) -> None:
        project.switch_on()
        lock = str(project.lock_file)
        result = project.guard("--quiet", "--lock-file", lock, "--", *writes_marker(project))
        assert (result.returncode, result.stdout, result.stderr) == (75, "", "")
        assert project.ran("job") == 0

    def test_force_environment_variable(self, project: Project) -> None:
        project.switch_on()
        force = {"FLASK_MAINTENANCE_FORCE": "1"}
        result = project.guard(
            "--lock-file", str(project.lock_file), "--", *writes_marker(project), env=force
        )
        assert result.returncode == 0, result.stderr
        assert project.ran("job") == 1

    def test_lock_file_mode_never_imports_the_app(self, project: Project) -> None:
        broken = {"FLASK_APP": "broken_app"}
        lock = str(project.lock_file)
        project.switch_on()
        assert_skipped(project.guard("--lock-file", lock, "--", *writes_marker(project), env=broken))
        project.switch_off()
        assert project.guard("--lock-file", lock, "--", *writes_marker(project), env=broken).returncode == 0
        assert project.ran("job") == 1
        assert project.ran("broken-app-imported") == 0

        # The same app through --app is imported, fails, and nothing runs.
        result = project.guard("--app", "broken_app", "--", *writes_marker(project))
        assert_one_line_error(result, 2, "cannot load the app 'broken_app'", "the database driver is missing")
        assert project.ran("broken-app-imported") == 1
        assert project.ran("job") == 1

    def test_lock_file_from_environment(self, project: Project) -> None:
        env = {"MAINTENANCE_LOCK_FILE": str(project.lock_file)}
        project.switch_on()
        assert_skipped(project.guard("--", *writes_marker(project), env=env))
        project.switch_off()
        assert project.guard("--", *writes_marker(project), env=env).returncode == 0
        assert project.ran("job") == 1

    def test_app_mode(self, project: Project) -> None:
        project.switch_on()
        assert_skipped(project.guard("--app", "cli_subject", "--", *writes_marker(project)))
        project.switch_off()
        result = project.guard("--app", "cli_subject:app", "--", *writes_marker(project))
        assert result.returncode == 0, result.stderr
        assert project.ran("job") == 1

    def test_app_mode_follows_cli_block_modes(self, project: Project) -> None:
        project.switch_on("readonly")
        only_full = {"SUBJECT_MAINTENANCE_CLI_BLOCK_MODES": "full"}
        result = project.guard("--app", "cli_subject", "--", *writes_marker(project), env=only_full)
        assert result.returncode == 0, result.stderr
        assert project.ran("job") == 1

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            pytest.param(["--lock-file", "L"], ["no COMMAND"], id="no-command"),
            pytest.param(["--lock-file", "L", "--"], ["no COMMAND"], id="nothing-after-dashes"),
            pytest.param(
                ["--lock-file", "L", "--skip-exit-code", "soon", "--", "true"],
                ["--skip-exit-code"],
                id="skip-code-word",
            ),
            pytest.param(
                ["--lock-file", "L", "--skip-exit-code", "300", "--", "true"],
                ["--skip-exit-code"],
                id="skip-code-range",
            ),
            pytest.param(
                ["--lock-file", "L", "--skip-exit-code", "²", "--", "true"],
                ["must be a number"],
                id="skip-code-superscript",
            ),
            pytest.param(
                ["--lock-file", "L", "--app", "cli_subject", "--", "true"], ["--app"], id="both-sources"
            ),
            pytest.param(["--", "true"], ["MAINTENANCE_LOCK_FILE"], id="no-source"),
            pytest.param(
                ["--app", "no_such_module", "--", "true"], ["cannot load the app"], id="app-not-found"
            ),
            pytest.param(
                ["--app", "cli_subject:nothing", "--", "true"],
                ["cannot load the app"],
                id="no-such-attribute",
            ),
            pytest.param(["--bogus", "--lock-file", "L", "--", "true"], ["--bogus"], id="unknown-option"),
        ],
    )
    def test_usage_errors(self, project: Project, args: list[str], words: list[str]) -> None:
        project.switch_on()  # an error must win over skipping
        result = project.guard(*args)
        line = assert_one_line_error(result, 2, "flask-maintenance-guard: error:", *words)
        assert result.stdout == ""
        assert "Traceback" not in line

    @pytest.mark.parametrize("how", ["option", "environment"])
    def test_a_relative_lock_file_is_refused(self, project: Project, how: str) -> None:
        # cron runs in the home folder, the app elsewhere: a relative path names another file.
        if how == "option":
            result = project.guard("--lock-file", "instance/maintenance.lock", "--", "true")
        else:
            result = project.guard("--", "true", env={"MAINTENANCE_LOCK_FILE": "instance/maintenance.lock"})
        assert_one_line_error(result, 2, "flask-maintenance-guard: error:", "absolute path")

    def test_a_lock_folder_that_does_not_exist_is_a_warning_on_every_run(self, project: Project) -> None:
        missing = project.root / "no-such-folder" / "maintenance.lock"
        for _ in range(2):
            result = project.guard("--lock-file", str(missing), "--", "sh", "-c", "echo ran")
            assert result.returncode == 0, result.stderr
            assert result.stdout == "ran\n"
            assert f"the lock file's folder {missing.parent} does not exist" in result.stderr

    def test_command_not_found(self, project: Project) -> None:
        result = project.guard("--lock-file", str(project.lock_file), "--", "no-such-command-anywhere")
        assert_one_line_error(result, 127, "cannot run no-such-command-anywhere")

    def test_command_not_executable(self, project: Project) -> None:
        script = project.root / "job.sh"
        script.write_text("#!/bin/sh\necho ran\n")
        script.chmod(0o644)
        if os.access(script, os.X_OK):
            pytest.skip("running as a user that may execute any file")
        result = project.guard("--lock-file", str(project.lock_file), "--", str(script))
        assert_one_line_error(result, 126, "cannot run")
