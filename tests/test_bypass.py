"""Admins are never locked out: allowed addresses, the secret link's cookie, app rules, open paths."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import itsdangerous.timed
import pytest
from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

from flask_maintenance import Maintenance

AppFactory = Callable[..., Flask]
COOKIE = "maintenance_bypass"

fast_path = pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "hook-only"])


def set_cookie_header(response: TestResponse) -> str:
    headers = [value for value in response.headers.getlist("Set-Cookie") if value.startswith(COOKIE + "=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def cookie_attributes(header: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in header.split(";")[1:]}


class TestAllowedAddresses:
    ALLOWED: ClassVar[list[str]] = ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1"]

    @fast_path
    @pytest.mark.parametrize(
        ("remote_addr", "passes"),
        [
            ("10.1.2.3", True),
            ("10.255.255.255", True),
            ("192.168.1.7", True),
            ("::1", True),
            ("2001:db8::5", True),
            ("2001:db8:ffff::1", True),
            ("::ffff:10.9.8.7", True),  # an IPv4 client on a dual-stack socket
            ("11.0.0.1", False),
            ("192.168.1.8", False),
            ("2001:db9::1", False),
            ("127.0.0.1", False),
            ("not-an-address", False),
            ("", False),
        ],
    )
    def test_allowed_ips_and_ranges_bypass(
        self, make_app: AppFactory, fast: bool, remote_addr: str, passes: bool
    ) -> None:
        app = make_app(MAINTENANCE_ALLOWED_IPS=self.ALLOWED, MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        for path, method in [("/", "GET"), ("/form", "POST"), ("/api/items", "DELETE")]:
            response = client.open(path, method=method, environ_base={"REMOTE_ADDR": remote_addr})
            assert response.status_code == (200 if passes else 503), (path, method)

    def test_a_comma_separated_string_is_accepted(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_ALLOWED_IPS="10.0.0.0/8, 2001:db8::1")
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        assert client.get("/", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200
        assert client.get("/", environ_base={"REMOTE_ADDR": "2001:db8::1"}).status_code == 200
        assert client.get("/", environ_base={"REMOTE_ADDR": "2001:db8::2"}).status_code == 503

    @fast_path
    def test_x_forwarded_for_is_not_trusted_without_proxy_fix(self, make_app: AppFactory, fast: bool) -> None:
        app = make_app(MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8"], MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(app=app)
        response = app.test_client().get(
            "/", headers={"X-Forwarded-For": "10.0.0.1"}, environ_base={"REMOTE_ADDR": "203.0.113.9"}
        )
        assert response.status_code == 503


def proxied_app(tmp_path: Path, *, proxy_fix_first: bool, fast: bool) -> Flask:
    """An app behind one reverse proxy, with ProxyFix applied before or after Maintenance(app)."""
    app = Flask("proxied", instance_path=str(tmp_path / "proxied-instance"))
    app.config.update(
        SECRET_KEY="s",
        MAINTENANCE_CHECK_INTERVAL=0,
        MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8"],
        MAINTENANCE_FAST_PATH=fast,
    )

    @app.get("/")
    def index() -> str:
        return f"hello {request.remote_addr}"

    if proxy_fix_first:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
        Maintenance(app)
    else:
        Maintenance(app)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    app.extensions["maintenance"].enable(app=app)
    return app


class TestBehindProxyFix:
    PROXY: ClassVar[dict[str, str]] = {"REMOTE_ADDR": "127.0.0.1"}

    @fast_path
    @pytest.mark.parametrize("proxy_fix_first", [True, False], ids=["proxyfix-before", "proxyfix-after"])
    def test_the_forwarded_address_is_used(self, tmp_path: Path, proxy_fix_first: bool, fast: bool) -> None:
        app = proxied_app(tmp_path, proxy_fix_first=proxy_fix_first, fast=fast)
        client = app.test_client()
        allowed = client.get("/", headers={"X-Forwarded-For": "10.0.0.1"}, environ_base=self.PROXY)
        assert allowed.status_code == 200
        assert allowed.get_data(as_text=True) == "hello 10.0.0.1"
        refused = client.get("/", headers={"X-Forwarded-For": "203.0.113.9"}, environ_base=self.PROXY)
        assert refused.status_code == 503
        # The proxy itself is not on the list: without the header, no bypass.
        assert client.get("/", environ_base=self.PROXY).status_code == 503

    @fast_path
    @pytest.mark.parametrize("proxy_fix_first", [True, False], ids=["proxyfix-before", "proxyfix-after"])
    def test_a_client_cannot_spoof_past_the_trusted_hop(
        self, tmp_path: Path, proxy_fix_first: bool, fast: bool
    ) -> None:
        app = proxied_app(tmp_path, proxy_fix_first=proxy_fix_first, fast=fast)
        # The client wrote "10.0.0.1"; the proxy appended the address it really saw.
        response = app.test_client().get(
            "/", headers={"X-Forwarded-For": "10.0.0.1, 203.0.113.9"}, environ_base=self.PROXY
        )
        assert response.status_code == 503


class TestSecretLink:
    @fast_path
    def test_the_link_sets_a_cookie_that_bypasses(self, make_app: AppFactory, fast: bool) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        assert client.get("/").status_code == 503

        link = client.get("/_maintenance/bypass/open-sesame-123")
        assert link.status_code in (302, 303)
        assert link.headers["Location"] == "/"
        assert link.headers["Cache-Control"] == "no-store"
        header = set_cookie_header(link)
        attributes = cookie_attributes(header)
        assert {"httponly", "samesite", "max-age", "path"} <= attributes
        assert "samesite=lax" in header.lower()
        assert "secure" not in attributes  # plain http: a Secure cookie would never come back
        assert "open-sesame-123" not in header

        assert client.get("/").get_data(as_text=True) == "home page"
        assert client.post("/form").status_code == 200
        assert client.delete("/api/items").status_code == 200

    def test_the_cookie_is_secure_over_https(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        link = client.get("/_maintenance/bypass/open-sesame-123", base_url="https://shop.example")
        assert link.headers["Location"] == "/"
        assert "secure" in cookie_attributes(set_cookie_header(link))
        assert client.get("/", base_url="https://shop.example").status_code == 200

    def test_the_cookie_expires(self, make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
        app = make_app(MAINTENANCE_BYPASS_MAX_AGE=600)
        app.extensions["maintenance"].enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        link = client.get("/_maintenance/bypass/open-sesame-123")
        assert "max-age=600" in set_cookie_header(link).lower()
        assert client.get("/").status_code == 200
        # A browser that ignores Max-Age still sends it; the signature's age says no.
        later = time.time() + 601
        monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: later))
        assert client.get("/").status_code == 503

    @pytest.mark.parametrize("second_secret", ["open-sesame-123", "another-token-456"])
    def test_a_new_secret_revokes_earlier_cookies_and_links(
        self, app: Flask, maintenance: Maintenance, second_secret: str
    ) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        client.get("/_maintenance/bypass/open-sesame-123")
        assert client.get("/").status_code == 200

        maintenance.enable(secret=second_secret, app=app)
        assert client.get_cookie(COOKIE) is not None  # the browser still has it...
        assert client.get("/").status_code == 503  # ...but it opens nothing any more
        if second_secret != "open-sesame-123":
            assert client.get("/_maintenance/bypass/open-sesame-123").status_code == 403

    def test_changing_the_message_while_on_keeps_the_window_and_its_cookies(
        self, app: Flask, maintenance: Maintenance
    ) -> None:
        maintenance.enable(secret="open-sesame-123", message="first", app=app)
        client = app.test_client()
        client.get("/_maintenance/bypass/open-sesame-123")
        maintenance.enable(message="second", app=app)
        assert client.get("/").status_code == 200
        assert maintenance.status(app=app).message == "second"

    def test_the_cookie_does_not_survive_off_and_on(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        client.get("/_maintenance/bypass/open-sesame-123")
        maintenance.disable(app=app)
        assert client.get("/").status_code == 200
        maintenance.enable(app=app)
        assert client.get("/").status_code == 503

    @fast_path
    @pytest.mark.parametrize(
        "token", ["wrong", "open-sesame-12", "open-sesame-1234", "OPEN-SESAME-123", "x" * 5000]
    )
    def test_a_wrong_token_is_403_and_sets_nothing(
        self, make_app: AppFactory, fast: bool, token: str
    ) -> None:
        app = make_app(MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        response = client.get(f"/_maintenance/bypass/{token}")
        assert response.status_code == 403
        assert not response.headers.getlist("Set-Cookie")
        assert client.get("/").status_code == 503

    def test_no_link_works_without_a_secret_or_while_off(self, app: Flask, maintenance: Maintenance) -> None:
        client = app.test_client()
        assert client.get("/_maintenance/bypass/anything").status_code == 403
        maintenance.enable(app=app)
        assert client.get("/_maintenance/bypass/anything").status_code == 403
        assert client.get("/_maintenance/bypass/").status_code in (403, 404)
        assert client.get("/").status_code == 503

    @pytest.mark.parametrize(
        "value",
        [
            "garbage",
            "",
            "eyJ3aW5kb3ciOiJ4In0.Zz9.bad-signature",
            "a" * 3000,
        ],
    )
    def test_a_forged_cookie_does_not_bypass(self, app: Flask, maintenance: Maintenance, value: str) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        client.set_cookie(COOKIE, value)
        assert client.get("/").status_code == 503

    def test_a_cookie_signed_with_another_secret_key_does_not_bypass(
        self, make_app: AppFactory, tmp_path: Path
    ) -> None:
        app = make_app()
        app.extensions["maintenance"].enable(secret="open-sesame-123", app=app)
        client = app.test_client()
        client.get("/_maintenance/bypass/open-sesame-123")
        stolen = client.get_cookie(COOKIE)
        assert stolen is not None
        # Same lock file, same token, other SECRET_KEY: the cookie must not verify there.
        other = make_app(SECRET_KEY="another-key")
        other_client = other.test_client()
        other_client.set_cookie(COOKIE, stolen.value)
        assert other_client.get("/").status_code == 503

    def test_only_a_hash_of_the_token_is_stored(
        self, app: Flask, maintenance: Maintenance, lock_file: Path
    ) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        stored = lock_file.read_text()
        assert "open-sesame-123" not in stored
        assert hashlib.sha256(b"open-sesame-123").hexdigest() in stored

    @pytest.mark.parametrize(
        "target",
        [
            "//evil.example",
            "//evil.example/path",
            "https://evil.example",
            "http:evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "%2F%2Fevil.example",
            "/%09/evil.example",
            "/%0d%0aLocation:%20https://evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
        ],
    )
    def test_next_never_leaves_the_site(self, app: Flask, maintenance: Maintenance, target: str) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        response = app.test_client().get(f"/_maintenance/bypass/open-sesame-123?next={target}")
        assert response.status_code in (302, 303)
        assert response.headers["Location"] == "/"
        assert response.headers.getlist("Location") == ["/"]

    def test_next_to_a_local_page_is_kept(self, app: Flask, maintenance: Maintenance) -> None:
        maintenance.enable(secret="open-sesame-123", app=app)
        response = app.test_client().get("/_maintenance/bypass/open-sesame-123?next=/form")
        assert response.headers["Location"] == "/form"


class TestBypassRules:
    @fast_path
    def test_a_rule_returning_true_lets_the_request_through(self, make_app: AppFactory, fast: bool) -> None:
        maintenance = Maintenance()

        @maintenance.bypass_rule
        def is_admin() -> bool:
            return request.headers.get("X-Role") == "admin"

        app = make_app(maintenance, MAINTENANCE_FAST_PATH=fast)
        maintenance.enable(app=app)
        client = app.test_client()
        assert client.get("/", headers={"X-Role": "admin"}).status_code == 200
        assert client.post("/form", headers={"X-Role": "admin"}).status_code == 200
        assert client.get("/", headers={"X-Role": "user"}).status_code == 503
        assert client.get("/").status_code == 503

    @fast_path
    @pytest.mark.parametrize("error", [RuntimeError("db down"), KeyError("user"), ZeroDivisionError()])
    def test_a_raising_rule_counts_as_false_and_never_500s(
        self, make_app: AppFactory, caplog: pytest.LogCaptureFixture, fast: bool, error: Exception
    ) -> None:
        maintenance = Maintenance()
        calls: list[int] = []

        @maintenance.bypass_rule
        def broken() -> bool:
            calls.append(1)
            raise error

        @maintenance.bypass_rule
        def header_rule() -> bool:
            return request.headers.get("X-Role") == "admin"

        app = make_app(maintenance, MAINTENANCE_FAST_PATH=fast)
        maintenance.enable(app=app)
        client = app.test_client()
        with caplog.at_level(logging.DEBUG, logger="flask_maintenance"):
            assert client.get("/").status_code == 503
            assert client.get("/api/items").status_code == 503
            # A later rule still gets its say.
            assert client.get("/", headers={"X-Role": "admin"}).status_code == 200
        assert calls
        assert not [record for record in caplog.records if record.levelno >= logging.ERROR]

    def test_rules_are_not_asked_while_off_or_in_banner_mode(self, make_app: AppFactory) -> None:
        maintenance = Maintenance()
        calls: list[str] = []

        @maintenance.bypass_rule
        def rule() -> bool:
            calls.append(request.path)
            return False

        app = make_app(maintenance)
        client = app.test_client()
        assert client.get("/").status_code == 200
        maintenance.enable(mode="banner", app=app)
        assert client.get("/").status_code == 200
        assert calls == []


class TestOpenPaths:
    @fast_path
    @pytest.mark.parametrize("mode", ["full", "readonly"])
    def test_allowed_paths_are_always_served(self, make_app: AppFactory, fast: bool, mode: str) -> None:
        app = make_app(MAINTENANCE_ALLOWED_PATHS=["/health/live", "/api/items"], MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(mode=mode, app=app)
        client = app.test_client()
        assert client.get("/health/live").get_data(as_text=True) == "alive"
        assert client.post("/api/items").status_code == 200
        assert client.post("/form").status_code == 503

    @fast_path
    def test_allowed_paths_match_whole_segments(self, make_app: AppFactory, fast: bool) -> None:
        app = make_app(MAINTENANCE_ALLOWED_PATHS=["/health"], MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        assert client.get("/health/live").status_code == 200
        assert client.get("/health").status_code == 404  # served (no such route), not refused
        assert client.get("/healthz").status_code == 503
        assert client.get("/health-check").status_code == 503

    @fast_path
    def test_allowed_paths_with_non_ascii_characters(self, make_app: AppFactory, fast: bool) -> None:
        app = make_app(MAINTENANCE_ALLOWED_PATHS=["/café"], MAINTENANCE_FAST_PATH=fast)

        @app.get("/café/menu")
        def menu() -> str:
            return "menu"

        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        assert client.get("/café/menu").get_data(as_text=True) == "menu"
        assert client.get("/cafe/menu").status_code == 503

    @fast_path
    @pytest.mark.parametrize("status_path", ["/_maintenance", "/ops/maintenance/"])
    def test_the_status_path_is_always_served(
        self, make_app: AppFactory, fast: bool, status_path: str
    ) -> None:
        app = make_app(MAINTENANCE_STATUS_PATH=status_path, MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(app=app)
        response = app.test_client().get(status_path.rstrip("/"))
        assert response.status_code == 200
        assert response.get_json()["active"] is True

    def test_a_bypassed_request_still_sees_the_banner_header(self, make_app: AppFactory) -> None:
        app = make_app(MAINTENANCE_ALLOWED_IPS=["10.0.0.1"])
        app.extensions["maintenance"].enable(message="Admins only", app=app)
        response: Any = app.test_client().get("/", environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert response.status_code == 200
        assert response.headers["X-Maintenance-Banner"] == "Admins only"


def test_bypass_links_need_a_secret_key(make_app: AppFactory) -> None:
    app = make_app(SECRET_KEY=None)
    lock_file = Path(app.config["MAINTENANCE_LOCK_FILE"])
    result = app.test_cli_runner().invoke(args=["maintenance", "on", "--secret"])
    assert result.exit_code == 2
    assert "SECRET_KEY" in result.output and "Traceback" not in result.output
    assert not lock_file.exists()


def test_a_cookie_never_passes_without_a_secret_key(make_app: AppFactory) -> None:
    signed = make_app()
    signed.extensions["maintenance"].enable(secret="s3cret-token", app=signed)
    client = signed.test_client()
    cookie = client.get("/_maintenance/bypass/s3cret-token").headers["Set-Cookie"]
    assert client.get("/").status_code == 200
    signed.secret_key = None  # the same window read by an app without a key
    assert client.get("/").status_code == 503, cookie
