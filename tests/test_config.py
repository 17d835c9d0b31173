"""Config keys: their defaults, validation at init_app, and the custom template."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock
from flask import Flask
from jinja2 import DictLoader

from flask_maintenance import ConfigurationError, Maintenance, MaintenanceError

AppFactory = Callable[..., Flask]


def bare_app(tmp_path: Path, **config: Any) -> Flask:
    """An app with nothing set but what the test passes (no CHECK_INTERVAL=0 as in make_app)."""
    app = Flask("bare", instance_path=str(tmp_path / "instance"))
    app.config.update(config)

    @app.get("/")
    def index() -> str:
        return "home page"

    return app


class TestDefaults:
    def test_every_documented_key_gets_its_default(self, tmp_path: Path) -> None:
        app = bare_app(tmp_path)
        Maintenance(app)
        assert app.config["MAINTENANCE_LOCK_FILE"] == os.path.join(app.instance_path, "maintenance.lock")
        assert app.config["MAINTENANCE_RETRY_AFTER"] == 60
        assert tuple(app.config["MAINTENANCE_API_PREFIXES"]) == ("/api",)
        assert tuple(app.config["MAINTENANCE_ALLOWED_IPS"]) == ()
        assert tuple(app.config["MAINTENANCE_ALLOWED_PATHS"]) == ()
        assert app.config["MAINTENANCE_CHECK_INTERVAL"] == 1.0
        assert app.config["MAINTENANCE_STATUS_PATH"] == "/_maintenance"
        assert app.config["MAINTENANCE_TEMPLATE"] is None

    def test_the_settings_hold_every_key_and_nothing_else(self, tmp_path: Path) -> None:
        from flask_maintenance.config import KEYS, Settings

        app = bare_app(tmp_path)
        settings = Maintenance(app).settings(app=app)
        # Each key's field is a typed, read-only attribute of the settings.
        assert set(Settings.__annotations__) == {key.field for key in KEYS}
        assert settings.retry_after == 60 and settings.status_path == "/_maintenance"
        with pytest.raises(AttributeError):
            settings.retry_after = 5
        assert settings == Settings.from_config(app.config)
        with pytest.raises(TypeError, match="missing"):
            Settings(backend="file")

    def test_values_set_before_init_app_are_kept(self, tmp_path: Path) -> None:
        app = bare_app(tmp_path, MAINTENANCE_RETRY_AFTER=5, MAINTENANCE_STATUS_PATH="/status")
        Maintenance(app)
        assert app.config["MAINTENANCE_RETRY_AFTER"] == 5
        assert app.config["MAINTENANCE_STATUS_PATH"] == "/status"

    def test_the_defaults_behave_as_documented(self, tmp_path: Path) -> None:
        app = bare_app(tmp_path)
        maintenance = Maintenance(app)
        assert app.extensions["maintenance"] is maintenance
        maintenance.enable(app=app)
        assert Path(tmp_path / "instance" / "maintenance.lock").is_file()
        client = app.test_client()
        page = client.get("/")
        assert page.status_code == 503 and page.headers["Retry-After"] == "60"
        assert page.mimetype == "text/html"
        assert client.get("/api/x").mimetype == "application/problem+json"
        assert client.get("/_maintenance").status_code == 200
        assert client.get("/", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 503

    def test_the_default_check_interval_is_one_second(self, clock: Clock, tmp_path: Path) -> None:
        app = bare_app(tmp_path)
        Maintenance(app)
        client = app.test_client()
        assert client.get("/").status_code == 200
        lock_file = Path(app.config["MAINTENANCE_LOCK_FILE"])
        lock_file.parent.mkdir(parents=True)
        lock_file.touch()
        clock.advance(0.9)
        assert client.get("/").status_code == 200
        clock.advance(0.2)
        assert client.get("/").status_code == 503

    def test_string_values_from_the_environment_are_understood(self, make_app: AppFactory) -> None:
        app = make_app(
            MAINTENANCE_RETRY_AFTER="30",
            MAINTENANCE_CHECK_INTERVAL="0",
            MAINTENANCE_ALLOWED_PATHS="/health, /metrics",
            MAINTENANCE_API_PREFIXES="/api,/v2",
        )
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        assert client.get("/").headers["Retry-After"] == "30"
        assert client.get("/health/live").status_code == 200
        assert client.get("/v2/x").mimetype == "application/problem+json"

    def test_a_path_like_lock_file(self, make_app: AppFactory, tmp_path: Path) -> None:
        app = make_app(MAINTENANCE_LOCK_FILE=tmp_path / "elsewhere.lock")
        app.extensions["maintenance"].enable(app=app)
        assert (tmp_path / "elsewhere.lock").is_file()
        assert app.test_client().get("/").status_code == 503


BAD_VALUES = [
    ("MAINTENANCE_ALLOWED_IPS", ["10.0.0.0/33"]),
    ("MAINTENANCE_ALLOWED_IPS", ["10.0.0.0/8", "not-an-address"]),
    ("MAINTENANCE_ALLOWED_IPS", ["2001:db8::/129"]),
    ("MAINTENANCE_ALLOWED_IPS", [10]),
    ("MAINTENANCE_RETRY_AFTER", -1),
    ("MAINTENANCE_RETRY_AFTER", "soon"),
    ("MAINTENANCE_RETRY_AFTER", 1.5),
    ("MAINTENANCE_RETRY_AFTER", True),
    ("MAINTENANCE_RETRY_AFTER", "-5"),
    ("MAINTENANCE_RETRY_AFTER", "\u00b2"),  # a superscript two: str.isdigit() says yes, int() says no
    ("MAINTENANCE_RETRY_AFTER", 10**12),
    ("MAINTENANCE_CHECK_INTERVAL", "often"),
    ("MAINTENANCE_CHECK_INTERVAL", None),
    ("MAINTENANCE_CHECK_INTERVAL", [1]),
    ("MAINTENANCE_CHECK_INTERVAL", -1),
    ("MAINTENANCE_CHECK_INTERVAL", float("nan")),
    ("MAINTENANCE_STATUS_PATH", "_maintenance"),
    ("MAINTENANCE_STATUS_PATH", ""),
    ("MAINTENANCE_STATUS_PATH", "/"),
    ("MAINTENANCE_STATUS_PATH", None),
    ("MAINTENANCE_API_PREFIXES", ["api"]),
    ("MAINTENANCE_ALLOWED_PATHS", ["health"]),
    ("MAINTENANCE_ALLOWED_PATHS", 42),
    ("MAINTENANCE_LOCK_FILE", ""),
    ("MAINTENANCE_LOCK_FILE", None),
]


class TestValidation:
    @pytest.mark.parametrize(("key", "value"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
    def test_a_bad_value_fails_at_init_app_naming_the_key(
        self, tmp_path: Path, key: str, value: object
    ) -> None:
        app = bare_app(tmp_path, **{key: value})
        with pytest.raises(ConfigurationError) as raised:
            Maintenance(app)
        assert key in str(raised.value)
        assert isinstance(raised.value, ValueError)
        assert isinstance(raised.value, MaintenanceError)

    def test_init_app_of_a_second_instance_fails_the_same_way(self, tmp_path: Path) -> None:
        maintenance = Maintenance()
        app = bare_app(tmp_path, MAINTENANCE_ALLOWED_IPS=["300.0.0.1"])
        with pytest.raises(ConfigurationError, match="MAINTENANCE_ALLOWED_IPS"):
            maintenance.init_app(app)

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("MAINTENANCE_ALLOWED_IPS", ["10.0.0.1/8"]),  # host bits set: still a clear range
            ("MAINTENANCE_ALLOWED_IPS", ("::1", "fe80::/10")),
            ("MAINTENANCE_RETRY_AFTER", 0),
            ("MAINTENANCE_CHECK_INTERVAL", 0),
            ("MAINTENANCE_CHECK_INTERVAL", 2.5),
            ("MAINTENANCE_STATUS_PATH", "/ops/maintenance/"),
            ("MAINTENANCE_ALLOWED_PATHS", None),
        ],
    )
    def test_good_values_are_accepted(self, tmp_path: Path, key: str, value: object) -> None:
        Maintenance(bare_app(tmp_path, **{key: value}))


class TestTemplate:
    def test_the_template_replaces_the_built_in_page(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_TEMPLATE="maintenance.html")
        app.jinja_loader = DictLoader(  # type: ignore[method-assign]
            {
                "maintenance.html": (
                    "<h1>Our own page</h1><p>{{ maintenance.message }}</p>"
                    "<p>retry {{ retry_after }}</p><p>{{ 'readonly' if readonly else 'full' }}</p>"
                )
            }
        )
        maintenance: Maintenance = app.extensions["maintenance"]
        maintenance.enable(retry=25, message="<Disk swap>", app=app)
        client = app.test_client()
        page = client.get("/")
        assert page.status_code == 503
        assert page.headers["Retry-After"] == "25"
        assert page.headers["Cache-Control"] == "no-store"
        assert page.mimetype == "text/html"
        assert page.get_data(as_text=True) == (
            "<h1>Our own page</h1><p>&lt;Disk swap&gt;</p><p>retry 25</p><p>full</p>"
        )
        assert client.head("/").get_data() == b""

        maintenance.enable(mode="readonly", app=app)
        assert client.post("/form").get_data(as_text=True).endswith("<p>readonly</p>")
        # JSON clients still get problem JSON.
        assert client.post("/api/items").mimetype == "application/problem+json"

    @pytest.mark.parametrize(
        "templates",
        [{}, {"maintenance.html": "{{ undefined_function() }}"}],
        ids=["missing template", "broken template"],
    )
    def test_a_template_that_fails_falls_back_to_the_built_in_page(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture, templates: dict[str, str]
    ) -> None:
        app = make_app(MAINTENANCE_TEMPLATE="maintenance.html")
        app.jinja_loader = DictLoader(templates)  # type: ignore[method-assign]
        app.extensions["maintenance"].enable(message="Still explained", app=app)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            page = app.test_client().get("/")
        assert page.status_code == 503
        assert "Still explained" in page.get_data(as_text=True)
        assert any("maintenance.html" in record.getMessage() for record in caplog.records)
