"""`flask-maintenance on|off|status`: the switch that loads neither Flask nor the app.

It must write exactly what `flask maintenance on` writes and say exactly what it says, so both are
run as real subprocesses against the same project and compared.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import FLASK, SWITCH, TIMEOUT, Project, assert_one_line_error, make_project

from flask_maintenance.backends import FileBackend
from flask_maintenance.model import State


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def lock_of(project: Project) -> State:
    raw = FileBackend(project.lock_file).read()
    assert isinstance(raw, bytes)
    return State.parse(raw, 60)[0]


def normalised(text: str) -> str:
    """What two runs a second apart may differ in: the start, the window id, the countdown."""
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<instant>", text)
    text = re.sub(r'"window": "[0-9a-f]{16}"', '"window": "<id>"', text)
    return re.sub(r"\(in [0-9:, a-z]+\)", "(in <left>)", text)


class TestTheSwitch:
    def test_on_status_off(self, project: Project) -> None:
        lock = str(project.lock_file)
        on = project.switch("on", "--lock-file", lock, "--retry", "90", "--message", "Back soon")
        assert on.returncode == 0, on.stderr
        assert on.stdout.startswith("Maintenance is ON (mode full)\n")
        assert "retry after:  90 s" in on.stdout
        assert f"backend:      file {lock}" in on.stdout
        state = lock_of(project)
        assert (state.mode, state.retry, state.message) == ("full", 90, "Back soon")

        status = project.switch("status", "--json", "--lock-file", lock)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        assert (shown["active"], shown["retry_after"], shown["backend"]) == (True, 90, f"file {lock}")

        off = project.switch("off", "--lock-file", lock)
        assert (off.returncode, off.stdout) == (0, f"Maintenance is OFF\n  backend:      file {lock}\n")
        assert not project.lock_file.exists()
        again = project.switch("off", "--lock-file", lock)
        assert again.stdout.startswith("Maintenance was already OFF; nothing changed\n")

    def test_on_while_on_changes_only_what_is_named(self, project: Project) -> None:
        lock = str(project.lock_file)
        assert project.switch("on", "--lock-file", lock, "--message", "one").returncode == 0
        window = lock_of(project).window
        changed = project.switch("on", "--lock-file", lock, "--mode", "readonly")
        assert changed.stdout.startswith("Maintenance was already ON: changed mode full -> readonly\n")
        state = lock_of(project)
        assert (state.mode, state.message, state.window) == ("readonly", "one", window)

    def test_the_environment_names_the_lock_file(self, project: Project) -> None:
        result = project.switch("on", env={"MAINTENANCE_LOCK_FILE": str(project.lock_file)})
        assert result.returncode == 0, result.stderr
        assert lock_of(project).active

    def test_it_imports_neither_flask_nor_click(self, project: Project) -> None:
        code = (
            "import sys\n"
            "from flask_maintenance.console import main\n"
            f"status = main(['on', '--lock-file', {str(project.lock_file)!r}])\n"
            "import flask_maintenance.guard\n"
            "print(status, sorted(m for m in ('flask', 'click', 'werkzeug') if m in sys.modules))\n"
        )
        result = project.run([sys.executable, "-c", code])
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "0 []"
        assert project.lock_file.exists()


@pytest.mark.slow
class TestSameAsTheFlaskCommand:
    """The same options through both commands: the same lock file, byte for byte, and the same
    words, but for the instant, the window id (random for every new window) and the countdown."""

    @pytest.mark.parametrize(
        "options",
        [
            (),
            ("--retry", "5m", "--message", "Upgrading the database: back in 5 minutes"),
            ("--mode", "readonly", "--for", "2h"),
            ("--mode", "banner", "--message", "Caf\u00e9 ferm\u00e9 \u2013 r\u00e9ouverture \u00e0 9 h"),
        ],
    )
    def test_on_writes_and_says_the_same(self, project: Project, options: tuple[str, ...]) -> None:
        flask = project.flask("maintenance", "on", *options)
        assert flask.returncode == 0, flask.stderr
        written_by_flask = project.lock_file.read_bytes()
        project.lock_file.unlink()
        switch = project.switch("on", "--lock-file", str(project.lock_file), *options)
        assert switch.returncode == 0, switch.stderr
        shown_by_switch, shown_by_flask = normalised(switch.stdout), normalised(flask.stdout)
        if "--for" in options:  # Retry-After counts down to the end: a second apart, one less
            shown_by_switch, shown_by_flask = (
                re.sub(r"retry after: +\d+ s", "retry after: <n> s", text)
                for text in (shown_by_switch, shown_by_flask)
            )
        assert shown_by_switch == shown_by_flask
        written = project.lock_file.read_bytes()
        assert normalised(written.decode()) == normalised(written_by_flask.decode())
        assert written.endswith(b"}\n") and written_by_flask.endswith(b"}\n")
        assert oct(project.lock_file.stat().st_mode & 0o777) == "0o644"

    def test_on_while_on_and_off_say_the_same(self, project: Project) -> None:
        steps = [("on",), ("on", "--retry", "30"), ("off",)]
        by_flask = [normalised(project.flask("maintenance", *step).stdout) for step in steps]
        lock = ("--lock-file", str(project.lock_file))
        by_switch = [normalised(project.switch(*step, *lock).stdout) for step in steps]
        assert by_switch == by_flask
        assert "changed retry (counting down / default) -> 30 s" in by_flask[1]

    @pytest.mark.parametrize(
        ("options", "status"),
        [
            (("--retry", "soon"), 2),
            (("--mode", "closed"), 2),
            (("--until", "2001-01-01T00:00:00Z"), 2),
            (("--until", "2099-01-01T00:00:00Z", "--for", "1h"), 2),
            (("--message", "x" * 5000), 2),
        ],
    )
    def test_bad_values_fail_alike(self, project: Project, options: tuple[str, ...], status: int) -> None:
        flask = project.flask("maintenance", "on", *options)
        switch = project.switch("on", "--lock-file", str(project.lock_file), *options)
        assert (flask.returncode, switch.returncode) == (status, status)
        assert switch.stderr == flask.stderr
        assert_one_line_error(switch, status, "Error: ")
        assert not project.lock_file.exists()

    def test_ctrl_c_while_another_change_holds_the_lock_is_aborted_alike(self, project: Project) -> None:
        # Another change holds the update lock; the operator gives up with Ctrl-C: one line, no
        # traceback, nothing written, and the same words and status from both commands.
        project.lock_file.parent.mkdir(parents=True, exist_ok=True)
        seen = []
        with open(f"{project.lock_file}.flock", "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            for argv in (
                [FLASK, "maintenance", "on"],
                [SWITCH, "on", "--lock-file", str(project.lock_file)],
            ):
                seen.append(interrupted_while_waiting_for_the_lock(project, argv))
        assert seen[0] == seen[1] == (1, "\nAborted!\n")
        assert not project.lock_file.exists()


def interrupted_while_waiting_for_the_lock(project: Project, argv: list[str]) -> tuple[int, str]:
    """Ctrl-C ``argv`` once it has opened ``<lock>.flock`` (waiting for it); its status and stderr."""
    process = subprocess.Popen(
        argv, cwd=project.root, env=project.env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        fds = Path(f"/proc/{process.pid}/fd")
        for _ in range(1000):  # at most 10 s
            with contextlib.suppress(OSError):  # the process may be replacing its files
                if any(str(link.readlink()).endswith(".flock") for link in fds.iterdir()):
                    break
            time.sleep(0.01)
        else:
            pytest.fail(f"{argv[0]} never opened the update lock")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait()
    return process.returncode, err


class TestHostileInput:
    """Every operator mistake: one line, the right exit status, and the state as it was."""

    @pytest.mark.parametrize(
        ("options", "words"),
        [
            (("--retry", "-1"), ["--retry"]),
            (("--retry", "9" * 400), ["--retry"]),
            (("--mode", "full\n"), ["--mode"]),
            (("--message", "x" * 5000), ["--message", "too long"]),
            (("--until", "tomorrow"), ["--until"]),
            (("--for", "0s"), ["--for"]),
        ],
    )
    def test_bad_values(self, project: Project, options: tuple[str, ...], words: list[str]) -> None:
        project.switch_on(message="kept")
        before = project.lock_file.read_bytes()
        result = project.switch("on", "--lock-file", str(project.lock_file), *options)
        assert_one_line_error(result, 2, "Error: ", *words)
        assert project.lock_file.read_bytes() == before

    @pytest.mark.parametrize(
        ("location", "words"),
        [
            (("--lock-file", "relative.lock"), ["absolute path"]),
            ((), ["--lock-file", "MAINTENANCE_LOCK_FILE"]),
            (("--backend", "ftp://example.com/"), ["MAINTENANCE_BACKEND"]),
        ],
    )
    def test_no_usable_location(self, project: Project, location: tuple[str, ...], words: list[str]) -> None:
        result = project.switch("on", *location)
        assert_one_line_error(result, 2, "Error: ", *words)
        assert not project.lock_file.exists()

    def test_a_lock_path_that_is_a_folder(self, project: Project) -> None:
        project.lock_file.mkdir()
        result = project.switch("on", "--lock-file", str(project.lock_file))
        assert_one_line_error(result, 1, "Error: ", str(project.lock_file))
        assert project.lock_file.is_dir()
        status = project.switch("status", "--lock-file", str(project.lock_file))
        assert status.returncode == 0  # unreadable: fail closed, shown as on
        assert status.stdout.startswith("Maintenance is ON (mode full)")

    def test_a_folder_that_does_not_exist(self, project: Project) -> None:
        missing = project.root / "nowhere" / "maintenance.lock"
        result = project.switch("on", "--lock-file", str(missing))
        assert_one_line_error(result, 1, "Error: ")
        assert not missing.parent.exists()

    def test_a_symlink_is_replaced_never_followed(self, project: Project) -> None:
        target = project.root / "precious.txt"
        target.write_text("keep me\n")
        project.lock_file.symlink_to(target)
        result = project.switch("on", "--lock-file", str(project.lock_file))
        assert result.returncode == 0, result.stderr
        assert target.read_text() == "keep me\n"
        assert not project.lock_file.is_symlink() and lock_of(project).active

    def test_a_damaged_lock_file(self, project: Project) -> None:
        project.lock_file.write_bytes(b"\xff{not json")
        status = project.switch("status", "--lock-file", str(project.lock_file))
        assert status.returncode == 0 and status.stdout.startswith("Maintenance is ON (mode full)")
        on = project.switch("on", "--lock-file", str(project.lock_file), "--mode", "readonly")
        assert on.returncode == 0, on.stderr  # a damaged lock is replaced by a new window
        assert lock_of(project).mode == "readonly"
        off = project.switch("off", "--lock-file", str(project.lock_file))
        assert off.returncode == 0 and not project.lock_file.exists()

    def test_a_damaged_plan_is_never_overwritten(self, project: Project) -> None:
        plan = Path(f"{project.lock_file}.plan")
        plan.write_bytes(b"[]")
        result = project.switch("off", "--lock-file", str(project.lock_file))
        assert_one_line_error(result, 1, "Error: ", "nothing was changed")
        assert plan.read_bytes() == b"[]"

    def test_unknown_command_and_options(self, project: Project) -> None:
        for argv in (("reboot",), ("on", "--secret"), ()):
            result = project.switch(*argv)
            assert result.returncode == 2
            assert "flask-maintenance: error:" in result.stderr
            assert "Traceback" not in result.stderr


#: What only the command line (or an unconfigured integration) needs: a web worker imports none of it.
CLI_ONLY = (
    "subprocess",
    "argparse",
    "getpass",
    "shlex",
    "flask_maintenance.cli",
    "flask_maintenance.console",
    "flask_maintenance.drain",
    "flask_maintenance.haproxy",
    "flask_maintenance.proxy",
    "flask_maintenance.switch",
    "flask_maintenance.webhooks",  # without MAINTENANCE_WEBHOOKS
)


class TestImports:
    """What each program imports, checked in a fresh interpreter."""

    def fresh(self, code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout.strip()

    def test_the_guard_and_the_switch_import_no_flask(self) -> None:
        code = (
            "import sys, flask_maintenance.console, flask_maintenance.guard\n"
            "print(sorted(m for m in ('flask', 'click', 'werkzeug', 'jinja2') if m in sys.modules))"
        )
        assert self.fresh(code) == "[]"

    def web_worker_modules(self, tmp_path: Path, with_extension: bool) -> list[str]:
        """The CLI-only modules loaded once a Flask app (with the extension or not) has served."""
        code = (
            "import sys\n"
            "from flask import Flask\n"
            "app = Flask('worker', instance_path=sys.argv[1])\n"
            "app.get('/')(lambda: 'hello')\n"
            + ("from flask_maintenance import Maintenance\nMaintenance(app)\n" if with_extension else "")
            + "from werkzeug.test import EnvironBuilder\n"  # not app.test_client(): it imports shlex
            "seen = []\n"
            "body = b''.join(app.wsgi_app(EnvironBuilder('/').get_environ(), lambda s, h: seen.append(s)))\n"
            "assert seen == ['200 OK'] and body == b'hello', (seen, body)\n"
            "print(' '.join(sorted(m for m in sys.argv[2:] if m in sys.modules)))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), *CLI_ONLY],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.split()

    def test_a_web_worker_imports_no_cli_only_module(self, tmp_path: Path) -> None:
        # Compared with the same app without the extension: older Flask and Werkzeug releases
        # import some of these themselves (Flask 2.3 loads subprocess), which is not ours to avoid.
        flask_alone = set(self.web_worker_modules(tmp_path, with_extension=False))
        added = set(self.web_worker_modules(tmp_path, with_extension=True)) - flask_alone
        assert not added, f"the extension made a web worker import {sorted(added)}"

    def test_the_public_names_still_import(self) -> None:
        import flask_maintenance

        names = (
            "Maintenance",
            "State",
            "Feature",
            "Schedule",
            "skip_during_maintenance",
            "request_blocked",
            "maintenance_enabled",
            "maintenance_disabled",
            "PAGE_CSP_SOURCES",
            "MaintenanceError",
            "ConfigurationError",
            "BackendError",
            "MaintenanceActive",
        )
        for name in names:
            assert getattr(flask_maintenance, name) is not None
            assert name in dir(flask_maintenance)
        from flask_maintenance import Maintenance
        from flask_maintenance.extension import Maintenance as Defined

        assert Maintenance is Defined
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            flask_maintenance.Nope  # noqa: B018
        with pytest.raises(ImportError):
            from flask_maintenance import Nope  # type: ignore[attr-defined]  # noqa: F401
