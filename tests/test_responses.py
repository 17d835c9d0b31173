"""What a client sees while maintenance is on: the 503s, the page, the modes and the banner."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask, render_template_string
from werkzeug.test import TestResponse

from flask_maintenance import ConfigurationError, Maintenance

AppFactory = Callable[..., Flask]

WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "retry_after", "ends_at", "overdue", "status_url"}


def soon(hour: int, minute: int, second: int = 0) -> datetime:
    """A time of day a month ahead: inside the year enable() accepts for ends_at."""
    day = datetime.now(timezone.utc) + timedelta(days=30)
    return day.replace(hour=hour, minute=minute, second=second, microsecond=0)


def assert_problem(response: TestResponse) -> dict[str, object]:
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    problem: dict[str, object] = json.loads(response.get_data())
    assert set(problem) == PROBLEM_MEMBERS
    assert problem["status"] == 503
    assert isinstance(problem["retry_after"], int)
    assert problem["retry_after"] == int(response.headers["Retry-After"])
    return problem


def assert_page(response: TestResponse) -> str:
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert response.mimetype_params.get("charset") == "utf-8"
    return response.get_data(as_text=True)


def place(lock_file: Path, record: dict[str, object]) -> None:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.write_text(json.dumps(record))


class TestFullMode:
    @pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    @pytest.mark.parametrize("path", ["/", "/form", "/api/items", "/no/such/page", "/static/site.css"])
    def test_every_request_gets_503_with_retry_after_and_no_store(
        self, app: Flask, maintenance: Maintenance, method: str, path: str
    ) -> None:
        maintenance.enable(retry=120, app=app)
        response = app.test_client().open(path, method=method)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "120"
        assert response.headers["Cache-Control"] == "no-store"

    def test_retry_after_defaults_to_the_configured_value(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_RETRY_AFTER=300)
        app.extensions["maintenance"].enable(app=app)
        assert app.test_client().get("/").headers["Retry-After"] == "300"

    def test_a_retry_of_zero_is_still_sent(self, app: Flask, maintenance: Maintenance) -> None:
        # Werkzeug's ServiceUnavailable would drop a falsy value.
        maintenance.enable(retry=0, app=app)
        response = app.test_client().get("/api/items")
        assert response.headers["Retry-After"] == "0"
        assert assert_problem(response)["retry_after"] == 0

    @pytest.mark.parametrize("path", ["/", "/api/items"])
    def test_head_gets_the_headers_and_no_body(self, app: Flask, maintenance: Maintenance, path: str) -> None:
        maintenance.enable(retry=30, app=app)
        client = app.test_client()
        head = client.head(path)
        assert head.status_code == 503
        assert head.get_data() == b""
        assert head.headers["Retry-After"] == "30"
        assert head.headers["Cache-Control"] == "no-store"
        assert head.headers["Content-Type"] == client.get(path).headers["Content-Type"]

    def test_maintenance_off_leaves_responses_alone(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(app=app)
        maintenance.disable(app=app)
        response = app.test_client().get("/")
        assert response.status_code == 200
        assert "Retry-After" not in response.headers
        assert "X-Maintenance-Banner" not in response.headers


class TestMarker:
    """``X-Maintenance`` tells a proxy or the edge Worker that a 503 is the app's own refusal."""

    def test_every_refusal_says_what_refused_it(self, make_app: AppFactory) -> None:
        app = make_app()
        extension: Maintenance = app.extensions["maintenance"]

        @app.post("/api/billing")
        @extension.feature("billing")
        def billing() -> str:
            return "paid"

        client = app.test_client()
        assert "X-Maintenance" not in client.get("/").headers
        extension.enable(app=app)
        assert client.get("/").headers["X-Maintenance"] == "full"
        assert client.get("/api/x").headers["X-Maintenance"] == "full"
        extension.enable(mode="readonly", app=app)
        assert client.post("/").headers["X-Maintenance"] == "readonly"
        extension.disable(app=app)
        extension.enable(feature="billing", app=app)
        assert client.post("/api/billing").headers["X-Maintenance"] == "feature"

    def test_the_config_cannot_replace_it(self, make_app: AppFactory) -> None:
        with pytest.raises(ConfigurationError, match="X-Maintenance is set by the maintenance answer"):
            make_app(MAINTENANCE_RESPONSE_HEADERS={"X-Maintenance": "no"})


class TestRetryAfterWithAnEnd:
    def test_retry_after_counts_down_to_ends_at(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(ends_at=datetime.now(timezone.utc) + timedelta(seconds=120), app=app)
        client = app.test_client()
        page = client.get("/")
        assert 117 <= int(page.headers["Retry-After"]) <= 120
        problem = assert_problem(client.get("/api/items"))
        assert 117 <= problem["retry_after"] <= 120  # type: ignore[operator]
        assert problem["overdue"] is False

    def test_an_explicit_retry_wins_over_the_countdown(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(retry=45, ends_at=datetime.now(timezone.utc) + timedelta(hours=2), app=app)
        assert app.test_client().get("/").headers["Retry-After"] == "45"
        assert app.test_client().get("/_maintenance").get_json()["retry_after"] == 45

    def test_once_ends_at_has_passed_retry_after_is_the_configured_one_and_it_says_so(
        self, make_app: AppFactory
    ) -> None:
        app = make_app(MAINTENANCE_RETRY_AFTER=90)
        place(Path(app.config["MAINTENANCE_LOCK_FILE"]), {"mode": "full", "ends_at": "2001-01-01T00:00:00Z"})
        client = app.test_client()
        page = client.get("/")
        # Not 1: every client and crawler would come back every second.
        assert page.headers["Retry-After"] == "90"
        assert "taking longer than expected" in page.get_data(as_text=True)
        problem = assert_problem(client.get("/api/items"))
        assert (problem["retry_after"], problem["overdue"]) == (90, True)
        assert problem["ends_at"] == "2001-01-01T00:00:00Z"
        assert client.get("/_maintenance").get_json()["overdue"] is True


class TestProblemJson:
    @pytest.mark.parametrize("path", ["/api", "/api/items", "/api/no/such/thing"])
    def test_api_paths_get_problem_json(self, app: Flask, maintenance: Maintenance, path: str) -> None:
        ends_at = soon(7, 8, 9)
        maintenance.enable(message="Database upgrade", ends_at=ends_at, app=app)
        # Even a browser that asks for HTML gets JSON under an API prefix.
        response = app.test_client().get(path, headers={"Accept": "text/html"})
        problem = assert_problem(response)
        assert problem["detail"] == "Database upgrade"
        assert problem["ends_at"] == ends_at.strftime("%Y-%m-%dT07:08:09Z")
        assert isinstance(problem["type"], str) and problem["type"]
        assert problem["title"] == "Down for maintenance"

    def test_without_a_message_the_detail_still_explains(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(app=app)
        problem = assert_problem(app.test_client().get("/api/items"))
        assert problem["ends_at"] is None
        assert isinstance(problem["detail"], str) and "maintenance" in problem["detail"]

    @pytest.mark.parametrize("path", ["/apiary", "/api-docs", "/apis"])
    def test_a_path_that_only_starts_with_the_prefix_gets_the_page(
        self, app: Flask, maintenance: Maintenance, path: str
    ) -> None:
        maintenance.enable(app=app)
        assert_page(app.test_client().get(path))

    def test_custom_api_prefixes(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_API_PREFIXES=["/v1/", "/graphql"])
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        assert_problem(client.get("/v1/users"))
        assert_problem(client.post("/graphql"))
        assert_page(client.get("/api/items"))

    @pytest.mark.parametrize(
        ("accept", "wants_json"),
        [
            ("application/json", True),
            ("application/problem+json", True),
            ("application/json, text/html;q=0.5", True),
            ("application/json, */*;q=0.1", True),
            ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
            ("text/html, application/json;q=0.9", False),
            ("text/html;q=0.5, application/json;q=0.5", False),
            ("*/*", False),
            ("", False),
            ("application/jsonp", False),
        ],
    )
    def test_accept_that_prefers_json_gets_problem_json(
        self, app: Flask, maintenance: Maintenance, accept: str, wants_json: bool
    ) -> None:
        maintenance.enable(message="Back soon", app=app)
        response = app.test_client().get("/", headers={"Accept": accept})
        if wants_json:
            assert assert_problem(response)["detail"] == "Back soon"
        else:
            assert "Back soon" in assert_page(response)


EXTERNAL = [
    re.compile(r"<link\b", re.I),
    re.compile(r"\bsrc\s*=", re.I),
    re.compile(r"url\(", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"@font-face", re.I),
    re.compile(r"https?://", re.I),
    re.compile(r"<img\b|<iframe\b|<object\b|<embed\b", re.I),
]


class TestPage:
    def page(self, app: Flask) -> str:
        return assert_page(app.test_client().get("/", headers={"Accept": "text/html"}))

    def test_page_fetches_nothing_from_anywhere(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(
            message="Back at noon", ends_at=datetime.now(timezone.utc) + timedelta(hours=2), app=app
        )
        page = self.page(app)
        for pattern in EXTERNAL:
            assert not pattern.search(page), pattern.pattern
        assert "<style>" in page  # the CSS is inline

    def test_page_is_readable_on_a_phone(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(app=app)
        page = self.page(app)
        assert re.search(r'<meta name="viewport" content="width=device-width[^"]*">', page)
        assert page.lstrip().lower().startswith("<!doctype html>")

    def test_the_message_is_html_escaped(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(message='<script>alert("x")</script> & <b>bold</b>', app=app)
        page = self.page(app)
        assert "<script>alert" not in page
        assert "<b>bold</b>" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page

    def test_a_hostile_message_in_a_hand_written_lock_file_is_escaped_too(
        self, app: Flask, lock_file: Path
    ) -> None:
        place(lock_file, {"message": "</p><img src=x onerror=alert(1)>"})
        page = self.page(app)
        assert "<img" not in page
        assert "&lt;/p&gt;&lt;img src=x onerror=alert(1)&gt;" in page

    def test_the_expected_end_is_shown(self, app: Flask, maintenance: Maintenance) -> None:
        ends_at = soon(5, 6)
        maintenance.enable(ends_at=ends_at, app=app)
        page = self.page(app)
        assert ends_at.strftime("%Y-%m-%dT05:06:00Z") in page
        assert ends_at.strftime("%Y-%m-%d 05:06 UTC") in page

    def test_without_an_end_the_page_says_when_to_come_back(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        maintenance.enable(retry=600, app=app)
        assert "10 minutes" in self.page(app)

    def test_an_inline_script_polls_the_status_path(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_STATUS_PATH="/ops/state")
        app.extensions["maintenance"].enable(app=app)
        page = self.page(app)
        scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
        assert len(scripts) == 1
        assert '<main role="main" data-status-url="/ops/state" ' in page
        assert 'getAttribute("data-status-url")' in scripts[0]
        assert "fetch(" in scripts[0] and "location" in scripts[0]
        # The page polls a path the extension really serves, and serves during maintenance.
        status = app.test_client().get("/ops/state")
        assert status.status_code == 200 and status.get_json()["active"] is True

    def test_the_page_makes_sense_without_javascript(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(message="Replacing a disk", app=app)
        without_script = re.sub(r"<script>.*?</script>", "", self.page(app), flags=re.S)
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", without_script, flags=re.S))
        assert "Down for maintenance" in text
        assert "Replacing a disk" in text
        assert "Reload this page" in text


class TestReadonlyMode:
    @pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
    @pytest.mark.parametrize("path", ["/", "/form", "/api/items"])
    def test_reads_pass(self, app: Flask, maintenance: Maintenance, method: str, path: str) -> None:
        maintenance.enable(mode="readonly", app=app)
        response = app.test_client().open(path, method=method)
        assert response.status_code == 200
        assert "Retry-After" not in response.headers

    @pytest.mark.parametrize("method", WRITE_METHODS)
    def test_writes_to_the_api_get_problem_json(
        self, app: Flask, maintenance: Maintenance, method: str
    ) -> None:
        maintenance.enable(mode="readonly", retry=45, message="Migrating", app=app)
        response = app.test_client().open("/api/items", method=method)
        problem = assert_problem(response)
        assert problem["title"] == "Read-only mode"
        assert problem["detail"] == "Migrating"
        assert response.headers["Retry-After"] == "45"
        assert response.headers["Cache-Control"] == "no-store"

    @pytest.mark.parametrize("method", WRITE_METHODS)
    def test_writes_from_a_browser_get_the_page(
        self, app: Flask, maintenance: Maintenance, method: str
    ) -> None:
        maintenance.enable(mode="readonly", app=app)
        page = assert_page(app.test_client().open("/form", method=method, headers={"Accept": "text/html"}))
        assert "<title>Read-only mode</title>" in page
        assert "<h1>Your change was not saved</h1>" in page

    def test_a_write_that_prefers_json_gets_json(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(mode="readonly", app=app)
        response = app.test_client().post("/form", headers={"Accept": "application/json"})
        assert assert_problem(response)["title"] == "Read-only mode"

    def test_the_form_works_again_when_off(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(mode="readonly", app=app)
        client = app.test_client()
        assert client.post("/form").status_code == 503
        maintenance.disable(app=app)
        assert client.post("/form").get_data(as_text=True) == "form saved"


class TestBannerMode:
    @pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", *WRITE_METHODS])
    def test_nothing_is_blocked_and_every_response_carries_the_banner(
        self, app: Flask, maintenance: Maintenance, method: str
    ) -> None:
        maintenance.enable(mode="banner", message="Slow today: reindexing", app=app)
        response = app.test_client().open("/api/items", method=method)
        assert response.status_code == 200
        assert response.headers["X-Maintenance-Banner"] == "Slow today: reindexing"

    def test_even_a_404_carries_the_banner(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(mode="banner", message="Heads up", app=app)
        response = app.test_client().get("/no/such/page")
        assert response.status_code == 404
        assert response.headers["X-Maintenance-Banner"] == "Heads up"

    def test_without_a_message_the_banner_has_a_generic_text(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        maintenance.enable(mode="banner", app=app)
        assert app.test_client().get("/").headers["X-Maintenance-Banner"] == "Maintenance in progress"

    @pytest.mark.parametrize(
        "message", ["Wartung läuft – bis 10 Uhr", "line one\r\nSet-Cookie: evil=1", "tab\there"]
    )
    def test_the_header_is_always_one_safe_ascii_line(
        self, app: Flask, maintenance: Maintenance, message: str
    ) -> None:
        maintenance.enable(mode="banner", message=message, app=app)
        response = app.test_client().get("/")
        header = response.headers["X-Maintenance-Banner"]
        assert header.isascii() and header.isprintable()
        assert "evil" not in response.headers.get("Set-Cookie", "")

    def test_templates_get_a_maintenance_object(self, app: Flask, maintenance: Maintenance) -> None:
        @app.get("/with-banner")
        def with_banner() -> str:
            return render_template_string(
                "{% if maintenance.active %}[{{ maintenance.mode }}: {{ maintenance.banner }}]{% endif %}body"
            )

        client = app.test_client()
        assert client.get("/with-banner").get_data(as_text=True) == "body"
        maintenance.enable(mode="banner", message="Read <only> soon", app=app)
        assert client.get("/with-banner").get_data(as_text=True) == "[banner: Read &lt;only&gt; soon]body"

    def test_banner_mode_is_active_but_not_blocking(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(mode="banner", app=app)
        assert maintenance.is_active(app=app) is True
        status = app.test_client().get("/_maintenance").get_json()
        assert status["active"] is True and status["mode"] == "banner"


class TestStatusPath:
    @pytest.mark.parametrize("mode", ["full", "readonly", "banner"])
    def test_status_is_served_in_every_mode(self, app: Flask, maintenance: Maintenance, mode: str) -> None:
        ends_at = soon(0, 0)
        maintenance.enable(
            mode=mode, retry=33, message="Why", ends_at=ends_at, secret="the-secret-token", app=app
        )
        response = app.test_client().get("/_maintenance")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        status = response.get_json()
        assert status["active"] is True
        assert status["mode"] == mode
        assert status["message"] == "Why"
        assert status["ends_at"] == ends_at.strftime("%Y-%m-%dT00:00:00Z")

    def test_status_shows_no_secrets(self, app: Flask, maintenance: Maintenance, lock_file: Path) -> None:
        maintenance.enable(secret="the-secret-token", app=app)
        state = maintenance.status(app=app)
        body = app.test_client().get("/_maintenance").get_data(as_text=True)
        for private in (
            "the-secret-token",
            state.token_hash,
            state.window,
            str(lock_file),
            "token",
            "window",
        ):
            assert private and private not in body
        assert state.host is not None and f'"{state.host}"' not in body

    def test_status_when_off(self, app: Flask) -> None:
        status = app.test_client().get("/_maintenance").get_json()
        assert status["active"] is False and status["mode"] is None


class TestEnableArguments:
    @pytest.mark.parametrize(
        "arguments",
        [
            {"mode": "partial"},
            {"retry": -1},
            {"retry": 1.5},
            {"retry": True},
            {"message": "x" * 2001},
            {"ends_at": datetime(2099, 1, 1)},  # naive
            {"ends_at": datetime.now(timezone.utc) - timedelta(minutes=1)},
        ],
        ids=["mode", "negative retry", "float retry", "bool retry", "long message", "naive end", "past end"],
    )
    def test_invalid_arguments_raise_and_change_nothing(
        self, app: Flask, maintenance: Maintenance, lock_file: Path, arguments: dict[str, object]
    ) -> None:
        maintenance.enable(message="before", app=app)
        before = lock_file.read_bytes()
        with pytest.raises(ConfigurationError):
            maintenance.enable(app=app, **arguments)  # type: ignore[arg-type]
        assert lock_file.read_bytes() == before

    def test_enable_and_disable_use_current_app(
        self, app: Flask, maintenance: Maintenance, lock_file: Path
    ) -> None:
        with app.app_context():
            maintenance.enable(mode="readonly")
            assert maintenance.is_active() is True
            assert maintenance.status().mode == "readonly"
        assert lock_file.exists()
        with app.app_context():
            maintenance.disable()
            maintenance.disable()  # switching off twice is fine
            assert maintenance.is_active() is False
        assert not lock_file.exists()
