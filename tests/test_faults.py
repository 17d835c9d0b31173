"""Faults: whatever is at the lock file's path, maintenance fails closed, never 500s, warns once.

Only a lock file that is truly absent means off. Anything else there (empty, damaged, huge, the
wrong JSON, a directory, a dangling symlink, a file no one may read) means full maintenance with
the configured defaults, and one warning in the log for it rather than one per request.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_maintenance.model import State
from flask_maintenance.responses import PROBLEM_TYPE
from flask_maintenance.texts import texts

AppFactory = Callable[..., Flask]
RunFlask = Callable[..., subprocess.CompletedProcess[str]]

#: Requests made against each fault; the warning must not repeat with them.
REQUESTS = 30
DEFAULT_RETRY = "60"

VALID = State(active=True, mode="banner", retry=5, message="Upgrading the database").to_json()
TEN_MB = 10 * 1024 * 1024


def _write(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inside").write_text('{"mode": "banner"}')


def _dangling_symlink(path: Path) -> None:
    path.symlink_to(path.parent / "no-such-target")


def _unreadable(path: Path) -> None:
    path.write_bytes(VALID)
    path.chmod(0o000)


#: name -> (how to damage the lock file, warnings expected for it)
FAULTS: dict[str, tuple[Callable[[Path], None], int]] = {
    # An empty lock file is the documented `touch maintenance.lock`: defaults, nothing to warn.
    "empty": (_write(b""), 0),
    "truncated mid-JSON": (_write(VALID[: len(VALID) // 2]), 1),
    "binary junk": (_write(bytes(range(256)) * 64 + b"\xff\xfe\x00"), 1),
    "huge junk (10 MB)": (_write(b"\xde\xad\xbe\xef" * (TEN_MB // 4)), 1),
    "huge valid JSON (10 MB)": (_write(json.dumps({"mode": "banner", "message": "x" * TEN_MB}).encode()), 1),
    "a JSON list": (_write(b'["banner", {"mode": "banner"}]'), 1),
    "a JSON number": (_write(b"42"), 1),
    "a JSON string": (_write(b'"off"'), 1),
    "JSON null": (_write(b"null"), 1),
    "fields of the wrong types": (
        _write(
            json.dumps(
                {
                    "mode": 3,
                    "retry": "soon",
                    "message": ["hello"],
                    "started_at": 12,
                    "ends_at": "tomorrow",
                    "user": {},
                    "host": [],
                    "window": 7,
                    "token_hash": False,
                }
            ).encode()
        ),
        1,
    ),
    "mode off (no such mode)": (_write(b'{"mode": "off"}'), 1),
    "a negative retry": (_write(b'{"retry": -30}'), 1),
    "a directory": (_directory, 1),
    "a dangling symlink": (_dangling_symlink, 1),
    "unreadable permissions": (_unreadable, 1),
}


def maintenance_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flask_maintenance" and r.levelno >= logging.WARNING]


def assert_full_with_defaults(app: Flask) -> None:
    """Every kind of request gets the full-maintenance 503 with the default Retry-After."""
    client = app.test_client()
    for _ in range(REQUESTS):
        page = client.get("/")
        assert page.status_code == 503, page.data[:300]
        assert page.headers["Retry-After"] == DEFAULT_RETRY
        assert page.headers["Cache-Control"] == "no-store"
        assert page.mimetype == "text/html"
        assert texts().full_detail.encode() in page.data
        api = client.get("/api/items")
        assert api.status_code == 503
        assert api.mimetype == "application/problem+json"
        problem = api.get_json(force=True)
        assert (problem["type"], problem["retry_after"]) == (PROBLEM_TYPE, int(DEFAULT_RETRY))
        assert client.post("/form", data={"a": "b"}).status_code == 503
        head = client.head("/")
        assert head.status_code == 503 and head.data == b""
    status = client.get("/_maintenance")
    assert status.status_code == 200
    assert status.get_json()["active"] is True
    assert status.get_json()["mode"] == "full"


@pytest.fixture(params=[True, False], ids=["fast-path", "hook-only"])
def fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_damaged_lock_file_means_full_maintenance_with_defaults_and_one_warning(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture, fast: bool, fault: str
) -> None:
    if fault == "unreadable permissions" and os.geteuid() == 0:
        pytest.skip("running as root, which reads any file whatever its permissions")
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    damage, expected_warnings = FAULTS[fault]
    caplog.set_level(logging.INFO)
    damage(lock)
    try:
        assert_full_with_defaults(app)
    finally:
        if fault == "unreadable permissions":
            lock.chmod(0o644)
    warnings = maintenance_warnings(caplog)
    assert len(warnings) == expected_warnings, [r.getMessage() for r in warnings]
    for record in warnings:
        assert "maintenance lock" in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_dangling_symlink_is_on_but_a_missing_file_is_off(make_app: AppFactory) -> None:
    app = make_app()
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    client = app.test_client()
    assert client.get("/").status_code == 200
    _dangling_symlink(lock)
    assert client.get("/").status_code == 503
    lock.unlink()
    assert client.get("/").status_code == 200


def test_a_lock_file_deleted_and_recreated_between_requests_is_followed_every_time(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture, fast: bool
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    client = app.test_client()
    readonly = State(active=True, mode="readonly", retry=7).to_json()
    caplog.set_level(logging.INFO)
    for _ in range(25):
        # Re-created in place (not atomically), the way `echo ... > lock` would.
        lock.write_bytes(readonly)
        assert client.get("/").status_code == 200
        refused = client.post("/form")
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "7")
        lock.unlink()
        assert client.post("/form").status_code == 200
        lock.write_bytes(b"")
        refused = client.post("/form")
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, DEFAULT_RETRY)
        lock.unlink()
        assert client.get("/").status_code == 200
    assert maintenance_warnings(caplog) == []


def test_damaged_content_recreated_between_requests_warns_once_per_appearance(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    client = app.test_client()
    caplog.set_level(logging.INFO)
    rounds = 5
    for _ in range(rounds):
        lock.write_bytes(b"{not json")
        for _ in range(10):
            assert client.get("/").status_code == 503
        lock.unlink()
        assert client.get("/").status_code == 200
    # Five appearances of a damaged file, fifty refused requests: five warnings at most.
    assert 1 <= len(maintenance_warnings(caplog)) <= rounds


def test_a_damaged_file_replaced_by_a_good_one_is_followed_without_more_warnings(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    lock.parent.mkdir(parents=True, exist_ok=True)
    client = app.test_client()
    caplog.set_level(logging.INFO)
    lock.write_bytes(b"\x00\x01garbage")
    for _ in range(REQUESTS):
        assert client.get("/").status_code == 503
    lock.write_bytes(VALID)  # banner mode: served, with the banner
    for _ in range(REQUESTS):
        served = client.get("/")
        assert served.status_code == 200
        assert served.headers["X-Maintenance-Banner"] == "Upgrading the database"
    assert len(maintenance_warnings(caplog)) == 1


# -- the CLI when the lock file cannot be written ---------------------------------------------


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory no one, root included, can create files in."""
    if os.geteuid() != 0:
        directory = tmp_path / "read-only"
        directory.mkdir()
        directory.chmod(0o555)
        try:
            yield directory
        finally:
            directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    directory = tmp_path / "immutable"
    directory.mkdir()
    if chattr and subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode == 0:
        try:
            yield directory
        finally:
            subprocess.run([chattr, "-i", str(directory)], check=True, capture_output=True)
        return
    # Root without an immutable flag: /proc takes no new files from anyone.
    yield Path("/proc")


def assert_one_clear_error_line(result: subprocess.CompletedProcess[str], mentions: str) -> None:
    assert result.returncode not in (0, None), result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "lock file" in lines[0] and mentions in lines[0], lines[0]


def test_on_with_the_lock_directory_missing_exits_non_zero_with_one_clear_line(
    run_flask: RunFlask, tmp_path: Path
) -> None:
    lock = tmp_path / "no-such-directory" / "maintenance.lock"
    result = run_flask("maintenance", "on", env={"SUBJECT_LOCK_FILE": str(lock)})
    assert_one_clear_error_line(result, str(lock.parent))
    assert "No such file or directory" in result.stderr
    assert not lock.parent.exists()
    # And the app, reading that path, is simply off: there is no lock file.
    status = run_flask("maintenance", "status", env={"SUBJECT_LOCK_FILE": str(lock)})
    assert status.returncode == 0 and "OFF" in status.stdout


def test_on_with_the_lock_directory_read_only_exits_non_zero_with_one_clear_line(
    run_flask: RunFlask, read_only_directory: Path
) -> None:
    lock = read_only_directory / "maintenance.lock"
    result = run_flask("maintenance", "on", env={"SUBJECT_LOCK_FILE": str(lock)})
    assert_one_clear_error_line(result, str(read_only_directory))
    assert not lock.exists()
    if read_only_directory != Path("/proc"):
        assert list(read_only_directory.iterdir()) == []


def test_on_with_the_lock_file_under_proc_exits_non_zero_with_one_clear_line(run_flask: RunFlask) -> None:
    # /proc takes no new files from anyone, root included.
    lock = Path("/proc/flask-maintenance-test/maintenance.lock")
    result = run_flask("maintenance", "on", env={"SUBJECT_LOCK_FILE": str(lock)})
    assert_one_clear_error_line(result, str(lock.parent))
    result = run_flask("maintenance", "on", env={"SUBJECT_LOCK_FILE": "/proc/maintenance.lock"})
    assert_one_clear_error_line(result, "/proc")
