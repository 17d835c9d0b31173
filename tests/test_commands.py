"""The gate on `flask <command>`: real `flask` subprocesses, each command leaving a marker when it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Project, assert_refused, make_project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


GATED = [
    pytest.param(("hello",), "hello", id="app-command"),
    pytest.param(("reports", "build"), "reports-build", id="blueprint-command"),
    pytest.param(("jobs", "sync"), "jobs-sync", id="group-subcommand"),
    pytest.param(("db", "upgrade"), "db-upgrade", id="added-group-like-flask-migrate"),
    pytest.param(("plug-sync",), "plug-sync", id="flask-commands-entry-point"),
]


class TestGatedCommands:
    @pytest.mark.parametrize(("command", "marker"), GATED)
    def test_refused_while_on_and_run_once_off(
        self, project: Project, command: tuple[str, ...], marker: str
    ) -> None:
        project.switch_on()
        line = assert_refused(project.flask(*command))
        assert f"`{' '.join(command)}` did not run" in line
        assert not any(project.markers.iterdir())  # nor did a group's callback

        project.switch_off()
        result = project.flask(*command)
        assert result.returncode == 0, result.stderr
        assert project.ran(marker) == 1

    def test_readonly_blocks_by_default(self, project: Project) -> None:
        project.switch_on("readonly")
        assert_refused(project.flask("hello"), mode="readonly")
        assert project.ran("hello") == 0

    def test_banner_never_blocks(self, project: Project) -> None:
        project.switch_on("banner")
        result = project.flask("hello")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert project.ran("hello") == 1

    def test_banner_never_blocks_even_when_listed(self, project: Project) -> None:
        project.switch_on("banner")
        result = project.flask("hello", env={"SUBJECT_MAINTENANCE_CLI_BLOCK_MODES": "full,readonly,banner"})
        assert result.returncode == 0, result.stderr
        assert project.ran("hello") == 1

    def test_custom_block_modes_let_readonly_through(self, project: Project) -> None:
        only_full = {"SUBJECT_MAINTENANCE_CLI_BLOCK_MODES": "full"}
        project.switch_on("readonly")
        assert project.flask("hello", env=only_full).returncode == 0
        assert project.ran("hello") == 1

        project.switch_on("full")
        assert_refused(project.flask("hello", env=only_full))
        assert project.ran("hello") == 1

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(("--help",), id="flask"),
            pytest.param(("hello", "--help"), id="command"),
            pytest.param(("db", "upgrade", "--help"), id="subcommand"),
            pytest.param(("plug-sync", "--help"), id="plugin"),
        ],
    )
    def test_help_still_works_while_on(self, project: Project, args: tuple[str, ...]) -> None:
        project.switch_on()
        result = project.flask(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Usage:")
        assert not any(project.markers.iterdir())


class TestExempt:
    def test_maintenance_group(self, project: Project) -> None:
        project.switch_on("readonly")
        result = project.flask("maintenance", "status")
        assert result.returncode == 0, result.stderr
        assert "Maintenance is ON (mode readonly)" in result.stdout

    def test_flask_routes(self, project: Project) -> None:
        project.switch_on()
        result = project.flask("routes")
        assert result.returncode == 0, result.stderr
        assert "flask_maintenance.status" in result.stdout

    def test_flask_shell(self, project: Project) -> None:
        # The shell runs PYTHONSTARTUP before reading stdin, which is closed: it ends at once.
        startup = project.root / "startup.py"
        startup.write_text(f"open({project.marker_path('shell')!r}, 'a').write('ran\\n')\n")
        project.switch_on()
        result = project.flask("shell", env={"PYTHONSTARTUP": str(startup)})
        assert result.returncode == 0, result.stderr
        assert project.ran("shell") == 1

    @pytest.mark.parametrize(
        ("command", "marker"),
        [pytest.param("warm-cache", "warm-cache", id="command"), pytest.param("ping", "ping", id="callback")],
    )
    def test_marked_with_m_exempt(self, project: Project, command: str, marker: str) -> None:
        project.switch_on()
        result = project.flask(command)
        assert result.returncode == 0, result.stderr
        assert project.ran(marker) == 1

    def test_group_name_in_cli_exempt(self, project: Project) -> None:
        exempt = {"SUBJECT_MAINTENANCE_CLI_EXEMPT": "db"}
        project.switch_on()
        assert project.flask("db", "upgrade", env=exempt).returncode == 0
        assert project.flask("db", "downgrade", env=exempt).returncode == 0
        assert_refused(project.flask("hello", env=exempt))
        assert (project.ran("db-upgrade"), project.ran("db-downgrade"), project.ran("hello")) == (1, 1, 0)

    def test_subcommand_path_in_cli_exempt(self, project: Project) -> None:
        exempt = {"SUBJECT_MAINTENANCE_CLI_EXEMPT": "reports, db upgrade"}
        project.switch_on()
        assert project.flask("db", "upgrade", env=exempt).returncode == 0
        assert_refused(project.flask("db", "downgrade", env=exempt))
        assert project.ran("db-upgrade") == 1
        assert project.ran("db-downgrade") == 0

    @pytest.mark.parametrize(
        ("command", "marker"),
        [
            pytest.param(("hello",), "hello", id="app-command"),
            pytest.param(("plug-sync",), "plug-sync", id="plugin"),
        ],
    )
    def test_force_environment_variable(
        self, project: Project, command: tuple[str, ...], marker: str
    ) -> None:
        project.switch_on()
        result = project.flask(*command, env={"FLASK_MAINTENANCE_FORCE": "1"})
        assert result.returncode == 0, result.stderr
        assert project.ran(marker) == 1

    def test_force_must_be_truthy(self, project: Project) -> None:
        project.switch_on()
        assert_refused(project.flask("hello", env={"FLASK_MAINTENANCE_FORCE": "0"}))
        assert project.ran("hello") == 0
