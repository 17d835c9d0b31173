"""`<status path>/live` and `<status path>/ready`: the probes of orchestrators and proxies."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask, abort, session
from werkzeug.test import TestResponse

from flask_maintenance import Maintenance

AppFactory = Callable[..., Flask]

# Both ways the extension decides: the WSGI fast path, and the request hook without it.
WAYS = [pytest.param(True, id="fast-path"), pytest.param(False, id="hook")]


def probe(app: Flask, path: str, method: str = "GET") -> TestResponse:
    return app.test_client().open(path, method=method)


def assert_probe(response: TestResponse, status: int, document: dict[str, object]) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.data) == document
    assert "Retry-After" not in response.headers
    assert "Set-Cookie" not in response.headers  # no session was opened


@pytest.mark.parametrize("fast_path", WAYS)
class TestProbes:
    def test_off_both_answer_200(self, make_app: AppFactory, fast_path: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        assert_probe(probe(app, "/_maintenance/live"), 200, {"live": True})
        assert_probe(probe(app, "/_maintenance/ready"), 200, {"ready": True})

    def test_full_maintenance_is_live_but_not_ready(self, make_app: AppFactory, fast_path: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        app.extensions["maintenance"].enable(app=app)
        assert_probe(probe(app, "/_maintenance/live"), 200, {"live": True})
        assert_probe(probe(app, "/_maintenance/ready"), 503, {"ready": False, "reason": "maintenance"})
        assert app.test_client().get("/").status_code == 503  # while the site itself is refused

    @pytest.mark.parametrize("mode", ["readonly", "banner"])
    def test_modes_that_serve_reads_stay_ready(
        self, make_app: AppFactory, fast_path: bool, mode: str
    ) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        app.extensions["maintenance"].enable(mode=mode, app=app)
        assert_probe(probe(app, "/_maintenance/ready"), 200, {"ready": True})
        assert_probe(probe(app, "/_maintenance/live"), 200, {"live": True})

    def test_a_switched_off_feature_or_a_window_to_come_stays_ready(
        self, make_app: AppFactory, fast_path: bool
    ) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        extension: Maintenance = app.extensions["maintenance"]
        extension.enable(feature="checkout", app=app)
        extension.schedule(datetime.now(timezone.utc) + timedelta(hours=1), app=app)
        assert_probe(probe(app, "/_maintenance/ready"), 200, {"ready": True})

    def test_back_to_ready_when_off(self, make_app: AppFactory, fast_path: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        extension: Maintenance = app.extensions["maintenance"]
        extension.enable(app=app)
        assert probe(app, "/_maintenance/ready").status_code == 503
        extension.disable(app=app)
        assert_probe(probe(app, "/_maintenance/ready"), 200, {"ready": True})

    def test_head_has_no_body(self, make_app: AppFactory, fast_path: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        app.extensions["maintenance"].enable(app=app)
        response = probe(app, "/_maintenance/ready", method="HEAD")
        assert response.status_code == 503
        assert response.data == b""

    def test_the_apps_own_hooks_never_run(self, make_app: AppFactory, fast_path: bool) -> None:
        # A login wall or a database in before_request must not make the process look dead.
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)

        @app.before_request
        def login_wall() -> None:
            session["seen"] = True
            abort(401)

        assert app.test_client().get("/").status_code == 401
        assert_probe(probe(app, "/_maintenance/live"), 200, {"live": True})
        assert_probe(probe(app, "/_maintenance/ready"), 200, {"ready": True})

    def test_under_a_configured_status_path(self, make_app: AppFactory, fast_path: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path, MAINTENANCE_STATUS_PATH="/ops/maintenance/")
        app.extensions["maintenance"].enable(app=app)
        assert_probe(probe(app, "/ops/maintenance/live"), 200, {"live": True})
        assert probe(app, "/ops/maintenance/ready").status_code == 503
        assert probe(app, "/_maintenance/live").status_code == 503  # the default path is the site's

    @pytest.mark.parametrize(
        "path",
        [
            "/_maintenance/live/",
            "/_maintenance/livex",
            "/_maintenance/ready/x",
            "/_maintenance//ready",
            "/_MAINTENANCE/ready",
            "/x/_maintenance/ready",
        ],
    )
    def test_look_alikes_are_not_probes(self, make_app: AppFactory, fast_path: bool, path: str) -> None:
        # Refused like any other page of the site: nothing but the exact paths answers 200.
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        app.extensions["maintenance"].enable(app=app)
        response = probe(app, path)
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"

    def test_any_query_string_and_method(self, make_app: AppFactory, fast_path: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast_path)
        app.extensions["maintenance"].enable(app=app)
        response = app.test_client().post("/_maintenance/ready?x=" + "%00" * 1000, data=b"y" * 10_000)
        assert_probe(response, 503, {"ready": False, "reason": "maintenance"})


def test_under_a_mount_point(make_app: AppFactory) -> None:
    # Mounted at /shop (SCRIPT_NAME), the probes are /shop/_maintenance/...; the app sees them
    # without the prefix.
    app = make_app()
    app.extensions["maintenance"].enable(app=app)
    client = app.test_client()
    response = client.get("/_maintenance/ready", environ_overrides={"SCRIPT_NAME": "/shop"})
    assert response.status_code == 503
    assert json.loads(response.data) == {"ready": False, "reason": "maintenance"}
