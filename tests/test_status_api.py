"""The status endpoint: what front ends and monitors read, never anything private."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import STATUS_KEYS
from flask import Flask

from flask_maintenance import ConfigurationError, Maintenance
from flask_maintenance.bypass import hash_token
from flask_maintenance.times import format_instant

AppFactory = Callable[..., Flask]


SCHEDULED_KEYS = {"starts_at", "ends_at", "mode", "message", "auto_off"}

fast_path = pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "hook-only"])


def ext(app: Flask) -> Maintenance:
    extension: Maintenance = app.extensions["maintenance"]
    return extension


def read_status(app: Flask, path: str = "/_maintenance", **kwargs: Any) -> dict[str, Any]:
    response = app.test_client().get(path, **kwargs)
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.get_json()
    assert set(body) == STATUS_KEYS, sorted(body)
    return body


class TestDocument:
    def test_off(self, app: Flask) -> None:
        assert read_status(app) == {
            "active": False,
            "mode": None,
            "message": None,
            "messages": {},
            "retry_after": None,
            "overdue": False,
            "started_at": None,
            "ends_at": None,
            "scheduled": None,
            "features": [],
        }

    def test_full_with_the_configured_retry(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_RETRY_AFTER=30)
        state = ext(app).enable(
            message="Upgrading the database", translations={"de": "Datenbank-Upgrade"}, app=app
        )
        assert read_status(app) == {
            "active": True,
            "mode": "full",
            "message": "Upgrading the database",
            "messages": {"de": "Datenbank-Upgrade"},
            "retry_after": 30,
            "overdue": False,
            "started_at": format_instant(state.started_at),  # type: ignore[arg-type]
            "ends_at": None,
            "scheduled": None,
            "features": [],
        }

    def test_readonly_with_its_own_retry(self, app: Flask) -> None:
        ext(app).enable(mode="readonly", retry=120, app=app)
        status = read_status(app)
        assert (status["active"], status["mode"], status["retry_after"]) == (True, "readonly", 120)

    def test_the_end_counts_down(self, app: Flask) -> None:
        ends_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
        ext(app).enable(ends_at=ends_at, app=app)
        status = read_status(app)
        assert status["ends_at"] == format_instant(ends_at)
        assert status["ends_at"].endswith("Z")
        assert 590 <= status["retry_after"] <= 600

    def test_banner_mode_has_no_retry(self, app: Flask) -> None:
        ext(app).enable(mode="banner", message="Slow tonight", app=app)
        status = read_status(app)
        assert (status["active"], status["mode"], status["message"]) == (True, "banner", "Slow tonight")
        assert status["retry_after"] is None

    def test_scheduled_and_features(self, app: Flask) -> None:
        starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
        ext(app).schedule(starts, starts + timedelta(hours=1), mode="readonly", message="Reindex", app=app)
        ext(app).enable(feature="search", message="private note for the team", app=app)
        ext(app).enable(feature="admin", app=app)
        status = read_status(app)
        assert status["active"] is False
        assert set(status["scheduled"]) == SCHEDULED_KEYS
        assert status["scheduled"]["starts_at"] == format_instant(starts)
        assert status["scheduled"]["mode"] == "readonly"
        assert status["features"] == ["admin", "search"]

    def test_after_off_everything_is_cleared(self, app: Flask) -> None:
        ext(app).enable(message="x", ends_at=datetime.now(timezone.utc) + timedelta(hours=1), app=app)
        ext(app).disable(app=app)
        assert read_status(app)["active"] is False
        assert read_status(app)["message"] is None


class TestReachable:
    @fast_path
    @pytest.mark.parametrize("mode", ["full", "readonly"])
    def test_during_maintenance(self, make_app: AppFactory, fast: bool, mode: str) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast)
        ext(app).enable(mode=mode, app=app)
        client = app.test_client()
        assert client.post("/form").status_code == 503
        assert read_status(app)["mode"] == mode
        assert read_status(app, headers={"Accept": "text/html"})["active"] is True

    def test_at_a_configured_path(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_STATUS_PATH="/ops/state/")
        ext(app).enable(app=app)
        assert read_status(app, "/ops/state")["active"] is True
        assert app.test_client().get("/_maintenance").status_code == 503


class TestNothingPrivate:
    def test_no_secret_hash_address_user_host_or_path(self, make_app: AppFactory, tmp_path: Path) -> None:
        app = make_app(MAINTENANCE_ALLOWED_IPS=["198.51.100.0/24", "2001:db8::/32"])
        secret = "correct-horse-battery-staple"
        state = ext(app).enable(secret=secret, message="Back soon", app=app)
        ext(app).enable(feature="payments", message="card provider incident #4411", app=app)
        client = app.test_client()
        response = client.get("/_maintenance", environ_overrides={"REMOTE_ADDR": "198.51.100.23"})
        text = response.get_data(as_text=True)
        assert set(response.get_json()) == STATUS_KEYS
        private = [
            secret,
            hash_token(secret),
            state.token_hash,
            state.window,
            "198.51.100",
            "2001:db8",
            str(tmp_path),
            app.config["MAINTENANCE_LOCK_FILE"],
            "maintenance.lock",
            "card provider incident",
            "127.0.0.1",
        ]
        for value in private:
            assert value and value not in text, value
        # Who switched it on and where: recorded in the lock file, never published.
        assert state.host == socket.gethostname()
        user = getpass.getuser()
        assert state.user == user
        body = response.get_json()
        assert user not in {str(value) for value in body.values()}
        assert state.host not in text
        assert "user" not in body and "host" not in body


class TestCors:
    ORIGIN = "https://status.example.com"

    def acao(
        self, app: Flask, origin: str | None, path: str = "/_maintenance"
    ) -> tuple[str | None, set[str]]:
        headers = {} if origin is None else {"Origin": origin}
        response = app.test_client().get(path, headers=headers)
        vary = {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}
        return response.headers.get("Access-Control-Allow-Origin"), vary

    def test_off_by_default(self, app: Flask) -> None:
        assert self.acao(app, self.ORIGIN)[0] is None

    def test_any_origin(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_STATUS_CORS="*")
        assert self.acao(app, self.ORIGIN)[0] == "*"
        assert self.acao(app, "https://elsewhere.example")[0] == "*"
        assert self.acao(app, None)[0] == "*"

    @pytest.mark.parametrize(
        "setting",
        ["https://status.example.com", ["https://status.example.com"]],
        ids=["string", "list of one"],
    )
    def test_one_origin(self, make_app: AppFactory, setting: Any) -> None:
        app = make_app(MAINTENANCE_STATUS_CORS=setting)
        allowed, vary = self.acao(app, self.ORIGIN)
        assert allowed == self.ORIGIN
        assert "origin" in vary
        for other in [
            "https://evil.example",
            "http://status.example.com",
            "https://status.example.com.evil.example",
            "https://status.example.com:8443",
            "null",
        ]:
            assert self.acao(app, other)[0] is None, other
        assert self.acao(app, None)[0] is None

    @pytest.mark.parametrize(
        "setting",
        [["https://a.example", "https://b.example"], "https://a.example, https://b.example"],
        ids=["list", "comma-separated"],
    )
    def test_a_list_of_origins(self, make_app: AppFactory, setting: Any) -> None:
        app = make_app(MAINTENANCE_STATUS_CORS=setting)
        for origin in ("https://a.example", "https://b.example"):
            allowed, vary = self.acao(app, origin)
            assert allowed == origin and "origin" in vary
        assert self.acao(app, "https://c.example")[0] is None

    def test_only_the_status_endpoint(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_STATUS_CORS="*")
        assert self.acao(app, self.ORIGIN, "/")[0] is None
        ext(app).enable(app=app)
        assert self.acao(app, self.ORIGIN, "/")[0] is None
        assert self.acao(app, self.ORIGIN)[0] == "*"

    def test_a_bad_setting_fails_at_startup(self, make_app: AppFactory) -> None:
        with pytest.raises(ConfigurationError, match="MAINTENANCE_STATUS_CORS"):
            make_app(MAINTENANCE_STATUS_CORS=["https://a.example", 42])
