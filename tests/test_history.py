"""The history: every transition recorded beside the state, and `flask maintenance history`.

Whoever can write beside the lock file (or to the Redis key) can write the history too: damaged
and hostile contents are skipped, never trusted, and a history that cannot be written never
fails a switch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import AppFactory
from flask import Flask
from servers import RedisServer, redis_server  # noqa: F401 (the fixture)

from flask_maintenance import Maintenance
from flask_maintenance.backends import file as file_backend
from flask_maintenance.times import utcnow

RunFlask = Callable[..., subprocess.CompletedProcess[str]]


def history_file(app: Flask) -> Path:
    return Path(app.config["MAINTENANCE_LOCK_FILE"] + ".history")


def entries(app: Flask) -> list[dict[str, Any]]:
    return [json.loads(line) for line in history_file(app).read_text().splitlines()]


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["maintenance", *args])


class TestRecorded:
    def test_every_transition_with_when_what_who_and_where(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        end = utcnow().replace(microsecond=0) + timedelta(hours=2)
        start = end + timedelta(hours=1)
        maintenance.enable(message="Upgrading", ends_at=end, app=app)
        maintenance.enable(mode="readonly", app=app)
        maintenance.disable(app=app)
        maintenance.schedule(start, start + timedelta(hours=1), mode="banner", message="Next", app=app)
        maintenance.cancel(app=app)
        maintenance.enable(feature="payments", message="Provider down", app=app)
        maintenance.disable(feature="payments", app=app)
        found = entries(app)
        assert [entry["event"] for entry in found] == [
            "on",
            "update",
            "off",
            "schedule",
            "cancel",
            "feature-off",
            "feature-on",
        ]
        on = found[0]
        assert on["mode"] == "full" and on["message"] == "Upgrading"
        assert on["until"] == end.isoformat().replace("+00:00", "Z")
        assert on["who"].endswith("@" + socket.gethostname())
        assert {entry["origin"] for entry in found} == {"python"}
        assert found[1]["mode"] == "readonly"
        assert found[3]["starts_at"] == start.isoformat().replace("+00:00", "Z")
        assert found[3]["mode"] == "banner" and found[3]["message"] == "Next"
        assert found[5]["feature"] == "payments" and found[5]["message"] == "Provider down"

    def test_a_change_that_changes_nothing_is_not_recorded(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        maintenance.disable(app=app)
        maintenance.cancel(app=app)
        assert not history_file(app).exists()
        maintenance.enable(message="once", app=app)
        maintenance.enable(message="once", app=app)
        assert [entry["event"] for entry in entries(app)] == ["on"]

    def test_the_cli_records_itself_as_the_origin(self, app: Flask) -> None:
        assert cli(app, "on", "--message", "from the shell").exit_code == 0
        assert cli(app, "off").exit_code == 0
        assert [(entry["event"], entry["origin"]) for entry in entries(app)] == [
            ("on", "cli"),
            ("off", "cli"),
        ]

    def test_window_and_enabled_record_going_back(self, app: Flask, maintenance: Maintenance) -> None:
        with maintenance.window(mode="readonly", app=app):
            pass
        with maintenance.enabled(app=app):
            pass
        assert [entry["event"] for entry in entries(app)] == ["on", "off", "on", "off"]

    def test_a_user_name_that_is_not_utf_8(
        self, app: Flask, maintenance: Maintenance, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOGNAME", "caf\udce9")  # a Latin-1 name in a UTF-8 locale
        assert maintenance.enable(app=app).active
        assert entries(app)[0]["who"].startswith("caf?@")

    def test_the_bypass_secret_is_never_recorded(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(secret="a-very-secret-token", app=app)
        text = history_file(app).read_text()
        assert "a-very-secret-token" not in text and "token" not in text


class TestHistoryCommand:
    def test_lists_the_last_entries_oldest_first(self, app: Flask, maintenance: Maintenance) -> None:
        for number in range(5):
            maintenance.enable(message=f"step {number}", app=app)
        result = cli(app, "history", "--limit", "3")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == 3
        assert [line.split("  ")[1].strip() for line in lines] == ["update"] * 3
        assert "step 2" in lines[0] and "step 4" in lines[2]
        assert "(cli)" not in lines[0] and "(python)" in lines[0]

    def test_json(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(message="Upgrading", app=app)
        maintenance.disable(app=app)
        result = cli(app, "history", "--json")
        assert result.exit_code == 0
        found = [json.loads(line) for line in result.stdout.splitlines()]
        assert [entry["event"] for entry in found] == ["on", "off"]
        assert set(found[0]) == {
            "at",
            "event",
            "who",
            "origin",
            "mode",
            "message",
            "until",
            "starts_at",
            "feature",
        }
        assert found[0]["message"] == "Upgrading" and found[1]["mode"] is None

    def test_no_history_yet(self, app: Flask) -> None:
        result = cli(app, "history")
        assert result.exit_code == 0 and result.stdout == "No history yet\n"

    @pytest.mark.parametrize("limit", ["0", "-1", "x", "100000"])
    def test_a_bad_limit_is_one_line(self, app: Flask, limit: str) -> None:
        result = cli(app, "history", "--limit", limit)
        assert result.exit_code == 2 and "Traceback" not in result.output


class TestRotation:
    def test_rotated_at_one_mebibyte_and_read_across_both_files(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        maintenance.enable(message="first", app=app)
        path = history_file(app)
        line = path.read_bytes()
        copies = file_backend.MAX_HISTORY_BYTES // len(line) - 1
        room = file_backend.MAX_HISTORY_BYTES - len(line) * (copies + 1)
        with path.open("ab") as history:  # exactly full: copies of the entry, then a blank line
            history.write(line * copies + b" " * (room - 1) + b"\n")
        assert path.stat().st_size == file_backend.MAX_HISTORY_BYTES
        maintenance.disable(app=app)
        rotated = Path(f"{path}.1")
        assert rotated.stat().st_size <= file_backend.MAX_HISTORY_BYTES
        assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["off"]
        result = cli(app, "history", "--json", "--limit", "2")
        assert [json.loads(line)["event"] for line in result.stdout.splitlines()] == ["on", "off"]

    def test_the_history_never_grows_past_two_files(self, app: Flask, maintenance: Maintenance) -> None:
        path = history_file(app)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * file_backend.MAX_HISTORY_BYTES)
        Path(f"{path}.1").write_bytes(b"old\n")
        maintenance.enable(app=app)
        assert Path(f"{path}.1").stat().st_size == file_backend.MAX_HISTORY_BYTES
        assert len(path.read_text().splitlines()) == 1


class TestDamagedHistory:
    """Whatever is at the history's path, the switch works and the command answers in a line."""

    def hostile_lines(self) -> bytes:
        valid = {"at": "2026-01-01T00:00:00Z", "event": "on", "who": "a@b", "origin": "cli", "mode": "full"}
        return b"\n".join(
            [
                b"\xff\xfe not utf-8",
                b"[1, 2, 3]",
                b"{not json",
                b"\x00" * 100,
                b'{"event": "on"}',  # missing fields
                json.dumps({**valid, "mode": "sideways"}).encode(),
                json.dumps({**valid, "event": "rm -rf /"}).encode(),
                json.dumps({**valid, "at": "yesterday"}).encode(),
                json.dumps({**valid, "who": ["a"]}).encode(),
                json.dumps({**valid, "message": "x" * 20_000}).encode(),  # longer than any entry
                b"[" * 100_000,  # deep nesting
                json.dumps({**valid, "message": "\x1b[2J\x1b]0;owned\x07 red"}).encode(),
            ]
        )

    def test_damaged_lines_are_skipped_and_counted(self, app: Flask, maintenance: Maintenance) -> None:
        path = history_file(app)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.hostile_lines() + b"\n")
        maintenance.enable(message="after the damage", app=app)
        result = cli(app, "history", "--limit", "100")
        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert len(lines) == 2
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "?[2J?]0;owned? red" in lines[0]
        assert "after the damage" in lines[1]
        assert "11 damaged history entries skipped" in result.stderr

    def test_a_huge_file_is_read_from_its_end_only(self, app: Flask, maintenance: Maintenance) -> None:
        path = history_file(app)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as history:
            history.truncate(50 * 1024 * 1024)  # sparse: 50 MiB of NULs, cheap to make
        maintenance.enable(message="still recorded", app=app)
        result = cli(app, "history", "--json")
        assert result.exit_code == 0
        assert json.loads(result.stdout.splitlines()[-1])["message"] == "still recorded"

    @pytest.mark.parametrize("kind", ["fifo", "directory", "symlink", "dangling-symlink"])
    def test_something_else_at_the_path_never_fails_the_switch(
        self,
        app: Flask,
        maintenance: Maintenance,
        tmp_path: Path,
        kind: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        path = history_file(app)
        path.parent.mkdir(parents=True, exist_ok=True)
        target = tmp_path / "elsewhere"
        target.write_text("precious\n")
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "directory":
            path.mkdir()
        elif kind == "symlink":
            path.symlink_to(target)
        else:
            path.symlink_to(tmp_path / "nowhere")
        assert cli(app, "on", "--message", "on anyway").exit_code == 0
        assert maintenance.status(app=app).active
        assert "the maintenance history was not written" in caplog.text
        assert target.read_text() == "precious\n" and not (tmp_path / "nowhere").exists()
        result = cli(app, "history")
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: cannot read the history") and "Traceback" not in result.output
        assert cli(app, "off").exit_code == 0

    def test_an_unwritable_folder_never_fails_a_feature_switch(
        self, make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "state" / "maintenance.lock"))
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "maintenance.lock.history").mkdir()
        maintenance: Maintenance = app.extensions["maintenance"]
        assert "payments" in maintenance.enable(feature="payments", app=app).features
        assert "history was not written" in caplog.text


class TestRedis:
    def test_a_capped_stream_beside_the_key(self, make_app: AppFactory, redis_server: RedisServer) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url)
        maintenance: Maintenance = app.extensions["maintenance"]
        maintenance.enable(message="on Redis", app=app)
        maintenance.disable(app=app)
        client = redis_server.client()
        assert client.type("flask-maintenance:state:history") == b"stream"
        result = cli(app, "history", "--json")
        assert [json.loads(line)["event"] for line in result.stdout.splitlines()] == ["on", "off"]
        backend = maintenance.backend(app=app)
        for _ in range(1500):
            backend.append_history(b'{"event": "filler"}\n')
        # Capped near 1000 entries (MAXLEN ~ trims whole nodes, so a little above is allowed).
        assert 1000 <= client.xlen("flask-maintenance:state:history") < 1200

    def test_hostile_stream_contents(self, make_app: AppFactory, redis_server: RedisServer) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url)
        client = redis_server.client()
        key = "flask-maintenance:state:history"
        client.xadd(key, {"other": "field"})
        client.xadd(key, {"entry": b"\xff\x00 junk"})
        client.xadd(key, {"entry": "x" * 100_000})
        result = cli(app, "history")
        assert result.exit_code == 0 and "3 damaged history entries skipped" in result.stderr

    def test_the_wrong_type_never_fails_the_switch(
        self, make_app: AppFactory, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(MAINTENANCE_BACKEND=redis_server.url)
        redis_server.client().hset("flask-maintenance:state:history", "a", "b")
        assert cli(app, "on").exit_code == 0
        assert "history was not written" in caplog.text
        result = cli(app, "history")
        assert result.exit_code == 1 and result.stderr.startswith(
            "Error: cannot read the history of the state"
        )


@pytest.mark.slow
def test_history_from_real_cli_runs(run_flask: RunFlask, tmp_path: Path) -> None:
    start = (utcnow() + timedelta(hours=1)).replace(microsecond=0).isoformat()
    for args in (
        ["on", "--message", "Upgrading", "--for", "1h"],
        ["on", "--mode", "readonly"],
        ["off"],
        ["schedule", "--at", start, "--for", "30m"],
        ["cancel"],
    ):
        result = run_flask("maintenance", *args)
        assert result.returncode == 0, result.stderr
    result = run_flask("maintenance", "history")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["on", "update", "off", "schedule", "cancel"]
    assert all(f"@{socket.gethostname()} (cli)" in line for line in lines)
    assert "Maintenance ON (mode full) until " in lines[0] and lines[0].endswith(": Upgrading")
    found = [json.loads(line) for line in run_flask("maintenance", "history", "--json").stdout.splitlines()]
    assert [entry["origin"] for entry in found] == ["cli"] * 5
    assert (tmp_path / "maintenance.lock.history").is_file()
