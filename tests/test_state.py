"""The lock file: its existence means on, its content is read tolerantly and fails closed."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_maintenance import BackendError, Feature, Maintenance, Schedule, State
from flask_maintenance.backends import FileBackend
from flask_maintenance.backends.base import MAX_DOCUMENT_BYTES as MAX_STATE_BYTES
from flask_maintenance.rules import MAX_SECONDS as MAX_RETRY
from flask_maintenance.rules import MODES

AppFactory = Callable[..., Flask]


def soon(hour: int, minute: int, second: int = 0) -> datetime:
    """A time of day a month ahead: inside the year enable() accepts for ends_at."""
    day = datetime.now(timezone.utc) + timedelta(days=30)
    return day.replace(hour=hour, minute=minute, second=second, microsecond=0)


def place(lock_file: Path, content: bytes) -> None:
    """Put a lock file there the way an operator would, with no help from the package."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.write_bytes(content)


def public_status(app: Flask) -> dict[str, object]:
    response = app.test_client().get("/_maintenance")
    assert response.status_code == 200
    data: dict[str, object] = response.get_json()
    return data


def assert_full_with_defaults(app: Flask, retry: int = 60) -> None:
    """What every fail-closed reading must look like from the outside."""
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == str(retry)
    assert "Down for maintenance" in page.get_data(as_text=True)
    api = client.get("/api/items")
    assert api.status_code == 503
    assert api.get_json()["retry_after"] == retry
    assert client.get("/form").status_code == 503
    status = public_status(app)
    assert status["active"] is True
    assert status["mode"] == "full"
    assert status["message"] is None


class TestOnAndOff:
    def test_no_lock_file_means_off(self, app: Flask, lock_file: Path) -> None:
        assert not lock_file.exists()
        client = app.test_client()
        assert client.get("/").status_code == 200
        assert client.get("/").get_data(as_text=True) == "home page"
        assert public_status(app)["active"] is False

    def test_empty_file_is_full_maintenance_with_configured_defaults(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = make_app(MAINTENANCE_RETRY_AFTER=42)
        place(Path(app.config["MAINTENANCE_LOCK_FILE"]), b"")
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            assert_full_with_defaults(app, retry=42)
        # `touch` is a supported way to switch on, not damage: nothing to warn about.
        assert caplog.records == []

    def test_whitespace_only_file_is_like_an_empty_one(self, app: Flask, lock_file: Path) -> None:
        place(lock_file, b"\n  \n")
        assert_full_with_defaults(app)

    def test_removing_the_file_switches_off(self, app: Flask, lock_file: Path) -> None:
        place(lock_file, b"")
        client = app.test_client()
        assert client.get("/").status_code == 503
        lock_file.unlink()
        assert client.get("/").status_code == 200

    def test_a_parent_that_is_a_file_means_no_lock_can_exist(
        self, make_app: AppFactory, tmp_path: Path
    ) -> None:
        (tmp_path / "plain").write_text("not a directory")
        app = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "plain" / "maintenance.lock"))
        assert app.test_client().get("/").status_code == 200


DAMAGED = {
    "prose": b"down for the database upgrade",
    "truncated object": b'{"mode": "banner", "retry": 5, "mess',
    "binary": bytes(range(256)) * 4,
    "a single nul byte": b"\x00",
    "latin-1 text": '{"mode": "banner", "message": "caf\xe9"}'.encode("latin-1"),
    "utf-16": '{"mode": "banner"}'.encode("utf-16"),
    "utf-8 with bom": b'\xef\xbb\xbf{"mode": "banner"}',
    "a json array": b'["banner"]',
    "a json string": b'"banner"',
    "json null": b"null",
    "a json number": b"42",
    "deep nesting": b"[" * 200_000,
    "nan retry only": b"NaN",
}


class TestDamagedContentFailsClosed:
    @pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
    def test_damaged_content_is_full_maintenance_with_defaults(
        self, app: Flask, lock_file: Path, content: bytes
    ) -> None:
        place(lock_file, content)
        assert_full_with_defaults(app)

    def test_every_truncation_of_a_real_lock_file_fails_closed(self) -> None:
        whole = State(
            active=True,
            mode="banner",
            retry=5,
            message="Short banner",
            started_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
            ends_at=datetime(2030, 1, 1, 1, tzinfo=timezone.utc),
            user="ops",
            host="web-1",
        ).to_json()
        assert State.parse(whole, 60)[0].mode == "banner"
        # Every cut before the closing brace is invalid JSON: a writer that died half-way.
        for cut in range(1, len(whole) - 2):
            state, problem = State.parse(whole[:cut], 60)
            assert (state.active, state.mode, state.retry_after(), state.message) == (
                True,
                "full",
                60,
                None,
            ), cut
            assert problem is not None, cut

    def test_huge_file_is_read_no_further_than_the_limit_and_fails_closed(
        self, app: Flask, lock_file: Path
    ) -> None:
        # Valid JSON, but far past any real lock file: cut at the limit, so it no longer parses.
        huge = json.dumps({"mode": "banner", "message": "x" * (8 * MAX_STATE_BYTES)}).encode()
        place(lock_file, huge)
        assert_full_with_defaults(app)

    def test_huge_whitespace_before_valid_json_fails_closed(self, app: Flask, lock_file: Path) -> None:
        place(lock_file, b" " * (2 * MAX_STATE_BYTES) + b'{"mode": "banner"}')
        assert_full_with_defaults(app)

    def test_a_directory_at_the_lock_path_fails_closed(self, app: Flask, lock_file: Path) -> None:
        lock_file.mkdir(parents=True)
        assert_full_with_defaults(app)

    def test_a_dangling_symlink_fails_closed(self, app: Flask, lock_file: Path, tmp_path: Path) -> None:
        lock_file.parent.mkdir(parents=True)
        lock_file.symlink_to(tmp_path / "nowhere")
        assert_full_with_defaults(app)

    def test_a_symlink_loop_fails_closed(self, app: Flask, lock_file: Path) -> None:
        lock_file.parent.mkdir(parents=True)
        lock_file.symlink_to(lock_file)
        assert_full_with_defaults(app)

    @pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
    def test_a_file_that_exists_but_cannot_be_read_fails_closed(self, make_app: AppFactory) -> None:
        # Opening /proc/self/mem works; reading it at offset 0 is an I/O error, even for root.
        app = make_app(MAINTENANCE_LOCK_FILE="/proc/self/mem")
        assert_full_with_defaults(app)

    @pytest.mark.skipif(
        hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode"
    )
    def test_an_unreadable_file_fails_closed(self, app: Flask, lock_file: Path) -> None:
        place(lock_file, b'{"mode": "banner"}')
        lock_file.chmod(0)
        try:
            assert_full_with_defaults(app)
        finally:
            lock_file.chmod(stat.S_IRUSR | stat.S_IWUSR)


WRONG_FIELDS = [
    ({"mode": "off"}, "mode"),
    ({"mode": "BANNER"}, "mode"),
    ({"mode": ["banner"]}, "mode"),
    ({"retry": -5}, "retry"),
    ({"retry": "30"}, "retry"),
    ({"retry": True}, "retry"),
    ({"retry": 2.5}, "retry"),
    ({"retry": MAX_RETRY + 1}, "retry"),
    ({"message": 12}, "message"),
    ({"ends_at": "tomorrow"}, "ends_at"),
    ({"ends_at": "2030-01-01T00:00:00"}, "ends_at"),  # no zone
    ({"ends_at": 1893456000}, "ends_at"),
    ({"started_at": "0001-01-01T00:00:00+14:00"}, "started_at"),  # before year 1 in UTC
    ({"ends_at": "9999-12-31T23:59:59-14:00"}, "ends_at"),  # after year 9999 in UTC
]


class TestWrongShapedFields:
    @pytest.mark.parametrize(("record", "field"), WRONG_FIELDS, ids=[repr(r) for r, _ in WRONG_FIELDS])
    def test_a_wrong_field_falls_back_to_its_default(
        self, app: Flask, lock_file: Path, record: dict[str, object], field: str
    ) -> None:
        place(lock_file, json.dumps(record).encode())
        assert_full_with_defaults(app)
        assert public_status(app)["ends_at"] is None

    @pytest.mark.parametrize(("record", "field"), WRONG_FIELDS, ids=[repr(r) for r, _ in WRONG_FIELDS])
    def test_the_problem_names_the_field(self, record: dict[str, object], field: str) -> None:
        state, problem = State.parse(json.dumps(record).encode(), 60)
        assert state.blocking
        assert problem is not None and field in problem

    def test_good_fields_survive_next_to_a_bad_one(self, app: Flask, lock_file: Path) -> None:
        place(
            lock_file, json.dumps({"mode": "readonly", "retry": "soon", "message": "Moving disks"}).encode()
        )
        client = app.test_client()
        assert client.get("/").status_code == 200
        refused = client.post("/api/items")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "60"
        assert refused.get_json()["detail"] == "Moving disks"
        assert refused.get_json()["title"] == "Read-only mode"

    def test_unknown_fields_are_ignored(self, app: Flask, lock_file: Path) -> None:
        place(lock_file, json.dumps({"mode": "full", "retry": 7, "ticket": "OPS-1"}).encode())
        assert app.test_client().get("/").headers["Retry-After"] == "7"


class TestStateValue:
    def test_status_is_immutable_and_exposes_the_documented_attributes(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        ends_at = datetime.now(timezone.utc) + timedelta(hours=1)
        maintenance.enable(mode="readonly", retry=30, message="Why", ends_at=ends_at, app=app)
        state = maintenance.status(app=app)
        assert (state.active, state.mode, state.retry, state.message) == (True, "readonly", 30, "Why")
        assert state.ends_at == ends_at.replace(microsecond=0)
        assert state.started_at is not None and state.started_at.tzinfo is not None
        with pytest.raises(AttributeError, match="immutable"):
            state.mode = "full"  # type: ignore[misc]
        public = state.to_dict()
        assert public["mode"] == "readonly" and public["retry"] == 30 and public["message"] == "Why"
        assert public["ends_at"] == ends_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def test_values_compare_hash_and_show_their_fields(self) -> None:
        start = datetime(2026, 12, 24, 22, tzinfo=timezone.utc)
        window = Schedule(start, mode="readonly", auto_off=False)
        assert window == Schedule(starts_at=start, ends_at=None, mode="readonly", message=None)
        assert window != Schedule(start) and window != (start, None, "readonly", None, False)
        assert hash(window) == hash(Schedule(start, mode="readonly"))
        assert (
            repr(Feature("search", "Reindexing"))
            == "Feature(name='search', message='Reindexing', started_at=None)"
        )
        assert repr(State(active=False)) == (
            "State(active=False, mode=None, retry=None, message=None, started_at=None, ends_at=None,"
            " user=None, host=None, window=None, token_hash=None, scheduled=None,"
            " features=mappingproxy({}), messages=mappingproxy({}))"
        )
        # default_retry is compared (it changes Retry-After) but not shown.
        assert State(active=True, default_retry=5) != State(active=True)
        with pytest.raises(AttributeError, match="immutable"):
            del window.mode

    def test_replace_builds_a_new_value_and_derives_what_the_constructor_derives(self) -> None:
        off = State(active=False)
        on = off.replace(active=True, message="Back soon")
        assert (on.mode, on.blocking, on.idle, on.message) == ("full", True, False, "Back soon")
        assert (off.active, off.mode, off.idle) == (False, None, True)
        banner = on.replace(mode="banner", messages={"de": "Gleich zurück"})
        assert (banner.blocking, banner.languages, banner.message) == (False, ("de",), "Back soon")
        with pytest.raises(TypeError):
            on.replace(colour="red")

    def test_to_dict_never_shows_the_token_hash_or_window(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(secret="hunter2-hunter2", app=app)
        state = maintenance.status(app=app)
        assert state.token_hash and state.window
        shown = json.dumps(state.to_dict())
        assert state.token_hash not in shown and state.window not in shown
        assert "hunter2" not in shown

    def test_off_state(self, app: Flask, maintenance: Maintenance) -> None:
        state = maintenance.status(app=app)
        assert state.active is False
        assert maintenance.is_active(app=app) is False
        assert state.to_dict()["mode"] is None


# Seconds-resolution, timezone-aware instants over the whole datetime range.
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc)
).map(lambda moment: moment.replace(microsecond=0))
states = st.builds(
    State,
    active=st.just(True),
    mode=st.sampled_from(MODES),
    retry=st.none() | st.integers(0, MAX_RETRY),
    message=st.none() | st.text(max_size=200),
    started_at=st.none() | instants,
    ends_at=st.none() | instants,
    user=st.none() | st.text(max_size=20),
    host=st.none() | st.text(max_size=20),
    window=st.none() | st.text(max_size=20),
    token_hash=st.none() | st.text(max_size=64),
)


class TestRoundTrip:
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(state=states)
    def test_parse_reads_back_what_to_json_wrote(self, state: State) -> None:
        parsed, problem = State.parse(state.to_json(), 17)
        assert problem is None
        assert parsed == state.replace(default_retry=17)

    @settings(max_examples=150, deadline=None, database=None)
    @given(raw=st.binary(max_size=300))
    def test_parse_never_raises_and_any_content_means_on(self, raw: bytes) -> None:
        state, _ = State.parse(raw, 60)
        assert state.active is True
        assert state.mode in MODES

    def test_the_file_written_by_enable_is_the_documented_json(
        self, app: Flask, maintenance: Maintenance, lock_file: Path
    ) -> None:
        ends_at = soon(3, 4, 5)
        maintenance.enable(mode="banner", retry=15, message="Upgrading", ends_at=ends_at, app=app)
        record = json.loads(lock_file.read_bytes())
        assert record["mode"] == "banner"
        assert record["retry"] == 15
        assert record["message"] == "Upgrading"
        assert record["ends_at"] == ends_at.strftime("%Y-%m-%dT03:04:05Z")
        started = datetime.fromisoformat(record["started_at"].replace("Z", "+00:00"))
        assert abs(started - datetime.now(timezone.utc)) < timedelta(minutes=1)
        assert "user" in record and record["host"]


class TestAtomicWrite:
    def test_enable_leaves_only_the_lock_file_its_update_lock_and_history(
        self, app: Flask, maintenance: Maintenance, lock_file: Path
    ) -> None:
        for mode in MODES:
            maintenance.enable(mode=mode, message=f"now {mode}", app=app)
        assert sorted(os.listdir(lock_file.parent)) == [
            lock_file.name,
            f"{lock_file.name}.flock",
            f"{lock_file.name}.history",
        ]
        # Readable by the proxy and other users, not just the one who switched it on.
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o644

    def test_a_new_state_replaces_the_file_instead_of_rewriting_it(
        self, app: Flask, maintenance: Maintenance, lock_file: Path, tmp_path: Path
    ) -> None:
        maintenance.enable(message="first", app=app)
        first = lock_file.read_bytes()
        # A hard link keeps the old inode: written in place, it would show the new content.
        os.link(lock_file, tmp_path / "old-inode")
        maintenance.enable(message="second", app=app)
        assert (tmp_path / "old-inode").read_bytes() == first
        assert json.loads(lock_file.read_bytes())["message"] == "second"

    def test_content_is_synced_before_the_rename(
        self, app: Flask, maintenance: Maintenance, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        events: list[str] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(fd: int) -> None:
            events.append("fsync")
            real_fsync(fd)

        def replace_file(source: str, target: str) -> None:
            events.append("replace")
            real_replace(source, target)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace_file)
        maintenance.enable(app=app)
        assert events.index("fsync") < events.index("replace")

    def test_the_temp_file_is_private_until_it_is_complete(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        modes: list[int] = []
        real_fchmod = os.fchmod

        def fchmod(fd: int, mode: int) -> None:
            modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
            real_fchmod(fd, mode)

        monkeypatch.setattr(os, "fchmod", fchmod)
        FileBackend(tmp_path / "maintenance.lock").write(b"{}\n")
        assert modes == [0o600]
        assert stat.S_IMODE((tmp_path / "maintenance.lock").stat().st_mode) == 0o644

    def test_a_symlink_planted_at_the_temp_files_name_is_never_followed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        victim = tmp_path / "victim"
        victim.write_text("someone's file\n")
        planted = tmp_path / f".maintenance-{os.getpid()}-{'00' * 8}"
        planted.symlink_to(victim)
        real_open, real_urandom = os.open, os.urandom
        tried: list[str] = []

        def open_(path: str, flags: int, mode: int = 0o777, **kwargs: object) -> int:
            tried.append(os.fspath(path))
            return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

        def urandom(size: int) -> bytes:
            # The planted name comes up first, a fresh one after it was tried.
            return real_urandom(size) if str(planted) in tried else bytes(size)

        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "urandom", urandom)
        FileBackend(tmp_path / "maintenance.lock").write(b"{}\n")
        assert str(planted) in tried
        assert victim.read_text() == "someone's file\n" and planted.is_symlink()
        assert (tmp_path / "maintenance.lock").read_bytes() == b"{}\n"

    def test_a_write_that_finds_every_temp_name_taken_fails_in_one_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / f".maintenance-{os.getpid()}-{'00' * 8}").write_text("taken")
        monkeypatch.setattr(os, "urandom", bytes)  # always the same name: the one taken
        with pytest.raises(BackendError, match=r"^cannot write the lock file in .*: no unused name"):
            FileBackend(tmp_path / "maintenance.lock").write(b"{}\n")
        assert not (tmp_path / "maintenance.lock").exists()

    def test_a_failed_write_leaves_no_temporary_file_and_the_state_unchanged(
        self, app: Flask, maintenance: Maintenance, lock_file: Path
    ) -> None:
        lock_file.mkdir(parents=True)  # rename onto a directory fails
        with pytest.raises(BackendError):
            maintenance.enable(message="never", app=app)
        assert sorted(os.listdir(lock_file.parent)) == [lock_file.name, f"{lock_file.name}.flock"]
        assert lock_file.is_dir() and list(lock_file.iterdir()) == []

    def test_readers_never_see_half_a_file(
        self, app: Flask, maintenance: Maintenance, lock_file: Path
    ) -> None:
        maintenance.enable(message="x" * 700, app=app)
        problems: list[str] = []
        done = threading.Event()

        def read_repeatedly() -> None:
            for _ in range(3000):
                if done.is_set():
                    return
                state, problem = State.parse(lock_file.read_bytes(), 60)
                message = state.message or ""
                width = len(message) // 700
                if problem is not None or not message or message != message[:width] * 700:
                    problems.append(problem or repr(message[:20]))

        reader = threading.Thread(target=read_repeatedly)
        reader.start()
        try:
            for index in range(100):
                maintenance.enable(mode="banner" if index % 2 else "full", message=str(index) * 700, app=app)
        finally:
            done.set()
            reader.join(timeout=10)
        assert not reader.is_alive()
        assert problems == []
