"""`flask maintenance on/off/status`, through CliRunner and through a real `flask` process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

AppFactory = Callable[..., Flask]
RunFlask = Callable[..., "subprocess.CompletedProcess[str]"]

# A day well inside the year ahead that --until accepts (at most 366 days away).
SOON = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%d")


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["maintenance", *args])


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.exception is None


def assert_operator_error(exit_code: int, stderr: str, stdout: str = "") -> None:
    """Non-zero exit, one line on stderr that starts with "Error:", no traceback."""
    assert exit_code != 0
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error:"), stderr
    assert "Traceback" not in stderr + stdout


def assert_cli_refused(result: Result) -> None:
    # An uncaught exception would be in result.exception (a traceback for a real user).
    assert isinstance(result.exception, SystemExit), result.exception
    assert_operator_error(result.exit_code, result.stderr, result.stdout)


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry of the lock's folder with its bytes (None for folders): the whole state.

    The empty ``<lock>.flock`` that writers hold while they write is not state, and may appear.
    """
    if not directory.exists():
        return {}
    return {
        entry.name: (entry.read_bytes() if entry.is_file() else None)
        for entry in sorted(directory.iterdir())
        if not entry.name.endswith(".flock")
    }


class TestOn:
    def test_on_with_defaults(self, app: Flask, lock_file: Path) -> None:
        result = invoke(app, "on")
        assert_ok(result)
        assert "Maintenance is ON (mode full)" in result.stdout
        record = json.loads(lock_file.read_bytes())
        assert record["mode"] == "full"
        assert app.test_client().get("/").status_code == 503

    def test_on_with_every_option(self, app: Flask, lock_file: Path) -> None:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        result = invoke(
            app, "on", "--mode", "readonly", "--retry", "30", "--message", "Disk swap", "--for", "30m"
        )
        assert_ok(result)
        record = json.loads(lock_file.read_bytes())
        assert (record["mode"], record["retry"], record["message"]) == ("readonly", 30, "Disk swap")
        ends_at = parse_instant(record["ends_at"])
        assert before + timedelta(minutes=30) <= ends_at <= before + timedelta(minutes=31)
        assert parse_instant(record["started_at"]) >= before
        assert record["host"]

        client = app.test_client()
        assert client.get("/").status_code == 200
        refused = client.post("/api/items")
        assert refused.status_code == 503
        assert refused.get_json()["title"] == "Read-only mode"
        assert refused.get_json()["detail"] == "Disk swap"
        assert refused.headers["Retry-After"] == "30"  # the explicit --retry wins over --for

    @pytest.mark.parametrize(
        ("duration", "seconds"), [("90", 90), ("45s", 45), ("2h", 7200), ("1h30m", 5400), ("1d", 86400)]
    )
    def test_for_durations(self, app: Flask, lock_file: Path, duration: str, seconds: int) -> None:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        assert_ok(invoke(app, "on", "--for", duration))
        ends_at = parse_instant(json.loads(lock_file.read_bytes())["ends_at"])
        assert timedelta(seconds=seconds) <= ends_at - before <= timedelta(seconds=seconds + 2)

    def test_until_with_an_offset_is_stored_in_utc(self, app: Flask, lock_file: Path) -> None:
        result = invoke(app, "on", "--until", f"{SOON}T12:00:00+02:00")
        assert_ok(result)
        assert json.loads(lock_file.read_bytes())["ends_at"] == f"{SOON}T10:00:00Z"
        assert f"{SOON}T10:00:00Z" in result.stdout
        problem = app.test_client().get("/api/items").get_json()
        assert problem["ends_at"] == f"{SOON}T10:00:00Z"

    @pytest.mark.parametrize("mode", ["full", "readonly", "banner"])
    def test_every_mode(self, app: Flask, mode: str) -> None:
        assert_ok(invoke(app, "on", "--mode", mode, "--message", "hello"))
        client = app.test_client()
        assert client.get("/").status_code == (503 if mode == "full" else 200)
        assert client.post("/form").status_code == (200 if mode == "banner" else 503)
        assert client.get("/").headers["X-Maintenance-Banner"] == "hello"

    def test_on_creates_a_missing_instance_folder(self, make_app: AppFactory, tmp_path: Path) -> None:
        app = make_app()
        instance = Path(app.instance_path)
        assert not instance.exists()
        assert app.config["MAINTENANCE_LOCK_FILE"] == str(instance / "maintenance.lock")
        assert_ok(invoke(app, "on"))
        assert (instance / "maintenance.lock").is_file()
        assert sorted(os.listdir(instance)) == [
            "maintenance.lock",
            "maintenance.lock.flock",
            "maintenance.lock.history",
        ]


class TestSecret:
    def link(self, result: Result) -> str:
        found = re.search(r"bypass link: (\S+)", result.stdout)
        assert found, result.stdout
        return found.group(1)

    def test_the_printed_link_lets_an_admin_in(self, app: Flask, lock_file: Path) -> None:
        result = invoke(app, "on", "--secret")
        assert_ok(result)
        link = self.link(result)
        assert link.startswith("/_maintenance/bypass/")
        token = link.rsplit("/", 1)[1]
        assert len(token) >= 20
        assert token not in lock_file.read_text()

        admin = app.test_client()
        response = admin.get(link)
        assert response.status_code in (302, 303) and response.headers["Location"] == "/"
        assert admin.get("/").get_data(as_text=True) == "home page"
        assert app.test_client().get("/").status_code == 503

        # Every `on` starts a new window: the old link and the old cookie stop working.
        second = invoke(app, "on", "--secret")
        assert_ok(second)
        assert self.link(second) != link
        assert admin.get("/").status_code == 503
        assert app.test_client().get(link).status_code == 403
        newcomer = app.test_client()
        newcomer.get(self.link(second))
        assert newcomer.get("/").status_code == 200

    def test_with_server_name_the_link_is_a_full_url(self, make_app: AppFactory) -> None:
        app = make_app(SERVER_NAME="shop.example", PREFERRED_URL_SCHEME="https")
        result = invoke(app, "on", "--secret")
        assert_ok(result)
        assert self.link(result).startswith("https://shop.example/_maintenance/bypass/")

    def test_without_secret_no_link_is_printed(self, app: Flask) -> None:
        result = invoke(app, "on")
        assert "bypass" not in result.stdout


class TestOffAndStatus:
    def test_off(self, app: Flask, lock_file: Path) -> None:
        assert_ok(invoke(app, "on"))
        result = invoke(app, "off")
        assert_ok(result)
        assert "OFF" in result.stdout
        assert not lock_file.exists()
        # No plan, no temp file; the history of the switch stays.
        assert sorted(os.listdir(lock_file.parent)) == [
            f"{lock_file.name}.flock",
            f"{lock_file.name}.history",
        ]
        assert app.test_client().get("/").status_code == 200
        assert_ok(invoke(app, "off"))  # already off: not an error

    def test_status_when_off(self, app: Flask, lock_file: Path) -> None:
        result = invoke(app, "status")
        assert_ok(result)
        assert "Maintenance is OFF" in result.stdout
        assert not lock_file.exists()

    def test_status_shows_who_when_why_and_until_when(self, app: Flask) -> None:
        assert_ok(
            invoke(
                app,
                "on",
                "--mode",
                "readonly",
                "--retry",
                "45",
                "--message",
                "Disk swap",
                "--until",
                f"{SOON}T00:00:00Z",
            )
        )
        result = invoke(app, "status")
        assert_ok(result)
        out = result.stdout
        assert "Maintenance is ON (mode readonly)" in out
        assert re.search(r"since:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out)
        assert re.search(r"by:\s+\S+@\S+", out)
        assert "Disk swap" in out
        assert f"{SOON}T00:00:00Z" in out
        assert re.search(r"retry after:\s+\d+ s", out)

    def test_status_json(self, app: Flask, lock_file: Path) -> None:
        off = invoke(app, "status", "--json")
        assert_ok(off)
        assert json.loads(off.stdout)["active"] is False

        assert_ok(invoke(app, "on", "--retry", "45", "--message", "Disk swap", "--for", "1h", "--secret"))
        result = invoke(app, "status", "--json")
        assert_ok(result)
        status = json.loads(result.stdout)
        assert status["active"] is True
        assert (status["mode"], status["retry"], status["message"]) == ("full", 45, "Disk swap")
        assert parse_instant(status["ends_at"]) > datetime.now(timezone.utc) + timedelta(minutes=59)
        assert parse_instant(status["started_at"]) <= datetime.now(timezone.utc)
        assert status["host"]
        assert "token_hash" not in status and "window" not in status
        record = json.loads(lock_file.read_bytes())
        assert record["token_hash"] not in result.stdout

    @pytest.mark.parametrize("content", [b"", b"{broken", b"\x00\xff"])
    def test_status_of_an_empty_or_damaged_lock_file(
        self, app: Flask, lock_file: Path, content: bytes
    ) -> None:
        lock_file.parent.mkdir(parents=True)
        lock_file.write_bytes(content)
        result = invoke(app, "status")
        assert_ok(result)
        assert "Maintenance is ON (mode full)" in result.stdout
        assert json.loads(invoke(app, "status", "--json").stdout)["mode"] == "full"
        assert lock_file.read_bytes() == content  # reading never repairs or rewrites


BAD_ON = [
    pytest.param(["--retry", "-5"], id="negative retry"),
    pytest.param(["--retry=-5"], id="negative retry with ="),
    pytest.param(["--retry", "1.5"], id="fractional retry"),
    pytest.param(["--retry", "soon"], id="word retry"),
    pytest.param(["--retry", ""], id="empty retry"),
    pytest.param(["--retry", str(10**12)], id="huge retry"),
    pytest.param(["--mode", "partial"], id="unknown mode"),
    pytest.param(["--mode", "FULL"], id="mode in capitals"),
    pytest.param(["--until", "2001-01-01T00:00:00Z"], id="until in the past"),
    pytest.param(["--until", "2099-01-01T00:00:00"], id="naive until"),
    pytest.param(["--until", "tomorrow"], id="until not iso"),
    pytest.param(["--until", "0001-01-01T00:00:00+14:00"], id="until out of range"),
    pytest.param(["--until", "2099-01-01T00:00:00Z", "--for", "1h"], id="until and for"),
    pytest.param(["--for", "soon"], id="for not a duration"),
    pytest.param(["--for", "0"], id="for zero"),
    pytest.param(["--for", "400d"], id="for over a year"),
    pytest.param(["--message", "x" * 2001], id="message too long"),
    pytest.param(["--retry", "\u00b2"], id="superscript retry"),
    pytest.param(["--until", "2999-01-01T00:00:00Z"], id="until more than a year away"),
]


class TestBadInputWithCliRunner:
    @pytest.mark.parametrize("args", BAD_ON)
    def test_from_off_nothing_is_written(self, app: Flask, lock_file: Path, args: list[str]) -> None:
        result = invoke(app, "on", *args)
        assert_cli_refused(result)
        assert not lock_file.exists()
        assert not lock_file.parent.exists()  # not even the instance folder
        assert app.test_client().get("/").status_code == 200

    @pytest.mark.parametrize("args", BAD_ON)
    def test_from_on_the_lock_file_is_unchanged(self, app: Flask, lock_file: Path, args: list[str]) -> None:
        assert_ok(invoke(app, "on", "--mode", "readonly", "--message", "original", "--secret"))
        before = snapshot(lock_file.parent)
        result = invoke(app, "on", *args)
        assert_cli_refused(result)
        assert snapshot(lock_file.parent) == before
        assert result.stdout == ""

    def test_a_missing_lock_directory(self, make_app: AppFactory, tmp_path: Path) -> None:
        app = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "missing" / "dir" / "maintenance.lock"))
        result = invoke(app, "on")
        assert_cli_refused(result)
        assert not (tmp_path / "missing").exists()  # only the instance folder is ever created
        assert_ok(invoke(app, "status"))

    def test_a_lock_path_under_proc(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_LOCK_FILE="/proc/flask-maintenance-test.lock")
        result = invoke(app, "on", "--message", "never")
        assert_cli_refused(result)
        assert not os.path.exists("/proc/flask-maintenance-test.lock")
        status = invoke(app, "status", "--json")
        assert_ok(status)
        assert json.loads(status.stdout)["active"] is False

    def test_a_directory_at_the_lock_path(self, app: Flask, lock_file: Path) -> None:
        lock_file.mkdir(parents=True)
        before = snapshot(lock_file.parent)
        assert_cli_refused(invoke(app, "on"))
        assert_cli_refused(invoke(app, "off"))
        assert snapshot(lock_file.parent) == before  # no temporary file left behind
        assert lock_file.is_dir()


def run_ok(run_flask: RunFlask, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = run_flask("maintenance", *args, **kwargs)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


class TestRealProcess:
    def test_on_status_off(self, run_flask: RunFlask, tmp_path: Path) -> None:
        lock_file = tmp_path / "maintenance.lock"
        on = run_ok(
            run_flask,
            "on",
            "--mode",
            "readonly",
            "--retry",
            "30",
            "--message",
            "Disk swap",
            "--for",
            "2h",
            "--secret",
        )
        assert "Maintenance is ON (mode readonly)" in on.stdout
        assert re.search(r"bypass link: /_maintenance/bypass/\S{20,}", on.stdout)
        record = json.loads(lock_file.read_bytes())
        assert (record["mode"], record["retry"], record["message"]) == ("readonly", 30, "Disk swap")
        assert record["token_hash"] and record["ends_at"]

        status = run_ok(run_flask, "status")
        assert "Maintenance is ON (mode readonly)" in status.stdout
        assert "Disk swap" in status.stdout
        assert record["ends_at"] in status.stdout

        as_json = json.loads(run_ok(run_flask, "status", "--json").stdout)
        assert as_json["active"] is True and as_json["mode"] == "readonly" and as_json["retry"] == 30

        off = run_ok(run_flask, "off")
        assert "OFF" in off.stdout
        assert not lock_file.exists()
        assert json.loads(run_ok(run_flask, "status", "--json").stdout)["active"] is False

    def test_on_until(self, run_flask: RunFlask, tmp_path: Path) -> None:
        run_ok(run_flask, "on", "--until", f"{SOON}T08:00:00-04:00")
        assert json.loads((tmp_path / "maintenance.lock").read_bytes())["ends_at"] == f"{SOON}T12:00:00Z"

    def test_bad_input_from_on_changes_nothing(self, run_flask: RunFlask, tmp_path: Path) -> None:
        lock_file = tmp_path / "maintenance.lock"
        run_ok(run_flask, "on", "--message", "original", "--secret")
        before = lock_file.read_bytes()
        cases = [
            ["--retry", "-5"],
            ["--retry", "1.5"],
            ["--mode", "partial"],
            ["--until", "2001-01-01T00:00:00Z"],
            ["--until", "2099-01-01T00:00:00"],
            ["--until", "2099-01-01T00:00:00Z", "--for", "1h"],
        ]
        for args in cases:
            done = run_flask("maintenance", "on", *args)
            assert_operator_error(done.returncode, done.stderr, done.stdout)
            assert lock_file.read_bytes() == before, args
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".maintenance")) == []

    def test_bad_input_from_off_writes_nothing(self, run_flask: RunFlask, tmp_path: Path) -> None:
        done = run_flask("maintenance", "on", "--retry", "-1")
        assert_operator_error(done.returncode, done.stderr, done.stdout)
        assert not (tmp_path / "maintenance.lock").exists()

    @pytest.mark.parametrize(
        "lock_path",
        ["{tmp}/missing/dir/maintenance.lock", "/proc/flask-maintenance-test.lock"],
        ids=["missing directory", "under /proc"],
    )
    def test_an_unwritable_lock_location(self, run_flask: RunFlask, tmp_path: Path, lock_path: str) -> None:
        path = lock_path.format(tmp=tmp_path)
        done = run_flask("maintenance", "on", "--message", "never", env={"SUBJECT_LOCK_FILE": path})
        assert_operator_error(done.returncode, done.stderr, done.stdout)
        assert not os.path.exists(path)
        assert not (tmp_path / "missing").exists()
        status = run_ok(run_flask, "status", env={"SUBJECT_LOCK_FILE": path})
        assert "Maintenance is OFF" in status.stdout

    def test_a_directory_at_the_lock_path(self, run_flask: RunFlask, tmp_path: Path) -> None:
        (tmp_path / "maintenance.lock").mkdir()
        for command in ("on", "off"):
            done = run_flask("maintenance", command)
            assert_operator_error(done.returncode, done.stderr, done.stdout)
        assert (tmp_path / "maintenance.lock").is_dir()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".maintenance")]


BAD_CONFIG = [
    pytest.param("MAINTENANCE_RETRY_AFTER", "'soon'", id="retry"),
    pytest.param("MAINTENANCE_ALLOWED_IPS", "['not an address']", id="allowed IPs"),
    pytest.param("MAINTENANCE_CHECK_INTERVAL", "-1", id="interval"),
    pytest.param("MAINTENANCE_LOCK_FILE", "'relative/maintenance.lock'", id="relative lock file"),
    pytest.param("MAINTENANCE_BACKEND", "'redis+sentinel://:hunter2@127.0.0.1:26379'", id="backend"),
]


@pytest.mark.slow  # three real `flask` processes per value
class TestBadConfigUnderTheCommand:
    """A bad MAINTENANCE_* value stops the app from loading: every `flask` command says which,
    in one line, and how to switch maintenance meanwhile (not the import's traceback)."""

    @pytest.mark.parametrize(("key", "value"), BAD_CONFIG)
    def test_one_line_that_names_the_key(self, tmp_path: Path, key: str, value: str) -> None:
        lock_file = tmp_path / "maintenance.lock"
        (tmp_path / "broken_app.py").write_text(
            "from flask import Flask\n"
            "from flask_maintenance import Maintenance\n"
            "app = Flask(__name__)\n"
            f"app.config['MAINTENANCE_LOCK_FILE'] = {str(lock_file)!r}\n"
            f"app.config[{key!r}] = {value}\n"
            "Maintenance(app)\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
        for command in (["maintenance", "status"], ["maintenance", "on"], ["routes"]):
            done = subprocess.run(
                [sys.executable, "-m", "flask", "--app", "broken_app", *command],
                cwd=tmp_path,
                env={**env, "PYTHONPATH": str(tmp_path)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 1, done.stderr
            assert_operator_error(done.returncode, done.stderr, done.stdout)
            assert done.stderr.startswith(f"Error: {key}"), done.stderr
            assert "hunter2" not in done.stderr
            if key not in ("MAINTENANCE_LOCK_FILE", "MAINTENANCE_BACKEND"):  # else no usable lock file
                assert f"`touch {lock_file}` switches maintenance on" in done.stderr
        assert not lock_file.exists()  # nothing was switched
