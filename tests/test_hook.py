"""The request hook: first of all hooks, cached per process, per app, and quiet in the logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock
from flask import Blueprint, Flask, Response, session
from flask.sessions import SecureCookieSessionInterface

from flask_maintenance import Maintenance, MaintenanceError

AppFactory = Callable[..., Flask]

fast_path = pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "hook-only"])


def touch(lock_file: Path, content: bytes = b"") -> None:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.write_bytes(content)


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("flask_maintenance") and r.levelno == level]


class TestHookOrder:
    @fast_path
    def test_no_other_before_request_hook_runs_for_a_refused_request(
        self, tmp_path: Path, fast: bool
    ) -> None:
        ran: list[str] = []
        app = Flask("ordered", instance_path=str(tmp_path / "instance"))
        app.config.update(
            TESTING=True,
            SECRET_KEY="s",
            MAINTENANCE_CHECK_INTERVAL=0,
            MAINTENANCE_FAST_PATH=fast,
            MAINTENANCE_ALLOWED_PATHS=["/health"],
        )

        @app.before_request
        def open_database_registered_before() -> None:
            ran.append("before init_app")
            raise RuntimeError("the database is down")

        maintenance = Maintenance(app)

        @app.before_request
        def registered_after() -> None:
            ran.append("after init_app")

        shop = Blueprint("shop", __name__)

        @shop.before_request
        def blueprint_hook() -> None:
            ran.append("blueprint")

        @shop.get("/shop")
        def shop_index() -> str:
            return "shop"

        @app.get("/health")
        def health() -> str:
            return "ok"

        app.register_blueprint(shop)
        maintenance.enable(app=app)
        client = app.test_client()
        for path in ["/", "/shop", "/no/such/page", "/api/items"]:
            assert client.get(path).status_code == 503, path
            assert client.post(path).status_code == 503, path
        assert ran == []

        # The same hooks do run for a request maintenance lets through: they were really there.
        with pytest.raises(RuntimeError, match="database is down"):
            client.get("/health")
        assert ran == ["before init_app"]

    @fast_path
    def test_a_refused_request_does_not_touch_the_session(self, make_app: AppFactory, fast: bool) -> None:
        opened: list[bool] = []
        accessed: list[bool] = []

        class CountingSessions(SecureCookieSessionInterface):
            def open_session(self, app: Flask, request: Any) -> Any:
                opened.append(True)
                return super().open_session(app, request)

            def save_session(self, app: Flask, session: Any, response: Response) -> None:
                accessed.append(session.accessed)
                super().save_session(app, session, response)

        app = make_app(MAINTENANCE_FAST_PATH=fast)
        app.session_interface = CountingSessions()
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        client.set_cookie("session", "anything")
        response = client.get("/")
        assert response.status_code == 503
        assert "Cookie" not in response.headers.get("Vary", "")
        assert "Set-Cookie" not in response.headers
        assert True not in accessed
        if fast:
            assert opened == []  # the fast path answers before Flask opens a session

    @fast_path
    @pytest.mark.parametrize(
        ("method", "path"), [("GET", "/nowhere"), ("POST", "/"), ("PUT", "/health/live")]
    )
    def test_unrouted_requests_get_503_not_404_or_405(
        self, make_app: AppFactory, fast: bool, method: str, path: str
    ) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast)
        client = app.test_client()
        assert client.open(path, method=method).status_code in (404, 405)
        app.extensions["maintenance"].enable(retry=10, app=app)
        response = client.open(path, method=method)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "10"

    def test_a_view_that_uses_the_session_still_works_when_off(self, app: Flask) -> None:
        @app.get("/count")
        def count() -> str:
            session["n"] = session.get("n", 0) + 1
            return str(session["n"])

        client = app.test_client()
        assert client.get("/count").get_data(as_text=True) == "1"
        assert client.get("/count").get_data(as_text=True) == "2"


class TestCheckInterval:
    @fast_path
    def test_the_lock_file_is_read_once_per_interval(
        self, clock: Clock, make_app: AppFactory, fast: bool
    ) -> None:
        app = make_app(MAINTENANCE_CHECK_INTERVAL=5, MAINTENANCE_FAST_PATH=fast)
        lock_file = Path(app.config["MAINTENANCE_LOCK_FILE"])
        client = app.test_client()
        assert client.get("/").status_code == 200

        touch(lock_file)
        assert client.get("/").status_code == 200  # still the cached reading
        clock.advance(4.9)
        assert client.get("/").status_code == 200
        clock.advance(0.2)
        assert client.get("/").status_code == 503

        lock_file.unlink()
        clock.advance(4.9)
        assert client.get("/").status_code == 503
        clock.advance(0.2)
        assert client.get("/").status_code == 200

    def test_status_is_cached_the_same_way(self, clock: Clock, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_CHECK_INTERVAL=2)
        maintenance: Maintenance = app.extensions["maintenance"]
        assert maintenance.is_active(app=app) is False
        touch(Path(app.config["MAINTENANCE_LOCK_FILE"]))
        assert maintenance.is_active(app=app) is False
        clock.advance(2)
        assert maintenance.is_active(app=app) is True

    def test_an_interval_of_zero_reads_every_time(self, clock: Clock, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_CHECK_INTERVAL=0)
        lock_file = Path(app.config["MAINTENANCE_LOCK_FILE"])
        client = app.test_client()
        for _ in range(3):
            assert client.get("/").status_code == 200
            touch(lock_file)
            assert client.get("/").status_code == 503
            lock_file.unlink()

    @fast_path
    def test_enable_and_disable_are_seen_at_once(
        self, clock: Clock, make_app: AppFactory, fast: bool
    ) -> None:
        app = make_app(MAINTENANCE_CHECK_INTERVAL=1000, MAINTENANCE_FAST_PATH=fast)
        maintenance: Maintenance = app.extensions["maintenance"]
        client = app.test_client()
        assert client.get("/").status_code == 200
        maintenance.enable(app=app)
        assert client.get("/").status_code == 503
        maintenance.enable(mode="readonly", app=app)
        assert client.get("/").status_code == 200
        assert client.post("/form").status_code == 503
        maintenance.disable(app=app)
        assert client.post("/form").status_code == 200


class TestSeveralApps:
    def test_one_instance_serves_two_apps_independently(self, make_app: AppFactory, tmp_path: Path) -> None:
        maintenance = Maintenance()
        shop = make_app(maintenance, MAINTENANCE_LOCK_FILE=str(tmp_path / "shop.lock"))
        blog = make_app(
            maintenance,
            MAINTENANCE_LOCK_FILE=str(tmp_path / "blog.lock"),
            MAINTENANCE_RETRY_AFTER=99,
            MAINTENANCE_STATUS_PATH="/blog-status",
        )
        assert shop.extensions["maintenance"] is maintenance
        assert blog.extensions["maintenance"] is maintenance

        maintenance.enable(message="shop only", app=shop)
        assert shop.test_client().get("/").status_code == 503
        assert blog.test_client().get("/").status_code == 200
        assert (tmp_path / "shop.lock").exists() and not (tmp_path / "blog.lock").exists()

        with blog.app_context():
            maintenance.enable()
            assert maintenance.status().message is None
        response = blog.test_client().get("/")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "99"
        assert blog.test_client().get("/blog-status").get_json()["active"] is True
        assert shop.test_client().get("/").headers["Retry-After"] == "60"

        maintenance.disable(app=shop)
        assert shop.test_client().get("/").status_code == 200
        assert blog.test_client().get("/").status_code == 503
        assert maintenance.status(app=shop).active is False
        assert maintenance.status(app=blog).active is True

    def test_an_app_that_was_not_set_up_is_an_error(self, tmp_path: Path) -> None:
        maintenance = Maintenance()
        stranger = Flask("stranger", instance_path=str(tmp_path / "stranger"))
        with pytest.raises(MaintenanceError):
            maintenance.enable(app=stranger)
        with pytest.raises(MaintenanceError):
            maintenance.status(app=stranger)
        assert not (tmp_path / "stranger").exists()

    def test_init_app_later(self, make_app: AppFactory) -> None:
        maintenance = Maintenance()
        app = make_app(maintenance)
        assert app.extensions["maintenance"] is maintenance
        maintenance.enable(app=app)
        assert app.test_client().get("/").status_code == 503


class TestLogging:
    @fast_path
    def test_a_refused_request_is_one_debug_record_and_nothing_louder(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture, fast: bool
    ) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast)
        touch(Path(app.config["MAINTENANCE_LOCK_FILE"]))
        client = app.test_client()
        client.get("/")  # the first reading logs the change
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            for index in range(5):
                assert client.get(f"/page/{index}").status_code == 503
        debug = records(caplog, logging.DEBUG)
        assert len(debug) == 5
        assert all("/page/" in record.getMessage() for record in debug)
        assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []

    @fast_path
    def test_one_info_record_per_state_change(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture, fast: bool
    ) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast)
        lock_file = Path(app.config["MAINTENANCE_LOCK_FILE"])
        client = app.test_client()
        with caplog.at_level(logging.DEBUG):
            for _ in range(3):
                client.get("/")
            assert records(caplog, logging.INFO) == []  # off from the start is no change

            touch(lock_file)  # another process (the CLI, an operator's touch) switches on
            for _ in range(5):
                client.get("/")
            switched_on = records(caplog, logging.INFO)
            assert len(switched_on) == 1 and "on" in switched_on[0].getMessage()

            lock_file.write_text('{"mode": "readonly"}')
            for _ in range(5):
                client.get("/")
            assert len(records(caplog, logging.INFO)) == 2

            lock_file.unlink()
            for _ in range(5):
                client.get("/")
            info = records(caplog, logging.INFO)
            assert len(info) == 3 and "off" in info[-1].getMessage()
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    def test_one_info_record_per_state_change_made_in_process(
        self, app: Flask, maintenance: Maintenance, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = app.test_client()
        client.get("/")
        with caplog.at_level(logging.INFO, logger="flask_maintenance"):
            maintenance.enable(app=app)
            for _ in range(3):
                client.get("/")
            assert len(records(caplog, logging.INFO)) == 1
            maintenance.disable(app=app)
            for _ in range(3):
                client.get("/")
            assert len(records(caplog, logging.INFO)) == 2

    @pytest.mark.parametrize(
        "damage",
        [b"{not json", b"\xff\xfe\x00", b"[]"],
        ids=["invalid json", "binary", "wrong shape"],
    )
    def test_a_damaged_lock_file_is_one_warning_not_one_per_request(
        self, app: Flask, lock_file: Path, caplog: pytest.LogCaptureFixture, damage: bytes
    ) -> None:
        touch(lock_file, damage)
        client = app.test_client()
        with caplog.at_level(logging.DEBUG):
            for _ in range(10):
                assert client.get("/").status_code == 503
        warnings = records(caplog, logging.WARNING)
        assert len(warnings) == 1
        assert str(lock_file) in warnings[0].getMessage()
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []

    def test_a_directory_at_the_lock_path_is_one_warning(
        self, app: Flask, lock_file: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        lock_file.mkdir(parents=True)
        client = app.test_client()
        with caplog.at_level(logging.WARNING):
            for _ in range(10):
                assert client.get("/").status_code == 503
        assert len(records(caplog, logging.WARNING)) == 1

    def test_a_wrong_field_is_one_warning_naming_it(
        self, app: Flask, lock_file: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        touch(lock_file, b'{"mode": "readonly", "retry": "soon"}')
        client = app.test_client()
        with caplog.at_level(logging.WARNING):
            for _ in range(10):
                client.post("/form")
        warnings = records(caplog, logging.WARNING)
        assert len(warnings) == 1 and "retry" in warnings[0].getMessage()

    def test_an_empty_lock_file_is_no_warning(
        self, app: Flask, lock_file: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        touch(lock_file)
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                app.test_client().get("/")
        assert records(caplog, logging.WARNING) == []
