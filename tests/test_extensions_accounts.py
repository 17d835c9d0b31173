"""Sign-in, sessions, security headers and async apps during maintenance, with the real extensions.

Each test runs a small app with the real extension (Flask-Session on a real redis-server,
Flask-Login, Flask-HTTPAuth, Flask-JWT-Extended, Flask-Talisman seen by headless Chromium, Flask's
async support) and checks what a visitor gets. The recipes of docs/_extensions/accounts.rst are
the files in docs/examples/ loaded here, so the page shows what is tested.

A refused request never fails because of the rest of the app: with the fast path (the default)
none of the app's ``url_value_preprocessors`` or ``before_request`` functions run for it, and the
session is opened only for a bypass rule that may pass. Without the fast path Flask opens the
session and runs the preprocessors before the request hook: the tests below pin that documented
limitation too.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from conftest import AppFactory
from flask import Flask, session
from servers import HOST, TIMEOUT, RedisServer, redis_server, require_module  # noqa: F401 (fixture)
from test_docs_examples import LoadExample, extension_of, load_example  # noqa: F401 (fixture)
from werkzeug.serving import make_server

from flask_maintenance import Maintenance
from flask_maintenance.responses import PAGE_CSP, PAGE_CSP_SOURCES

if TYPE_CHECKING:
    from playwright.sync_api import Browser

JSON = {"Accept": "application/json"}
ORIGIN = {"Origin": "https://spa.example.com"}
CUSTOM_PAGE = "Back soon (our own page)"


def app_with_template(tmp_path: Path, name: str = "accounts") -> Flask:
    """An app whose ``MAINTENANCE_TEMPLATE`` (``maintenance.html``) is :data:`CUSTOM_PAGE`."""
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "maintenance.html").write_text(CUSTOM_PAGE)
    app = Flask(name, instance_path=str(tmp_path / "instance"), template_folder=str(templates))
    app.config.update(SECRET_KEY="test-secret", MAINTENANCE_CHECK_INTERVAL=0)
    return app


# -- Flask-Session on a redis-server that stops ----------------------------------------------


def session_app(tmp_path: Path, redis: RedisServer, *, rule: bool = False, **config: Any) -> Flask:
    """A real app keeping its sessions in ``redis`` through Flask-Session.

    ``MAINTENANCE_TEMPLATE`` is set: HTML refusals render it in the app, JSON ones are prebuilt.
    With ``rule``, a bypass rule for staff that needs the session cookie.
    """
    require_module("flask_session", 'pip install -e ".[test]"')
    from flask_session import Session
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: a stopped server fails each call at once (redis-py's default backs off for seconds).
    store = Redis(
        HOST, redis.port, password=redis.password, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0)
    )
    app = app_with_template(tmp_path)
    app.config.update(
        SESSION_TYPE="redis", SESSION_REDIS=store, MAINTENANCE_TEMPLATE="maintenance.html", **config
    )
    Session(app)
    maintenance = Maintenance(app)
    if rule:
        maintenance.bypass_rule(cookie="session")(lambda: session.get("staff") is True)

    @app.get("/")
    def index() -> str:
        return f"Hello, {session.get('name', 'guest')}!"

    @app.post("/sign-in/<name>")
    def sign_in(name: str) -> str:
        session.update(name=name, staff=name == "ada")
        return "Signed in"

    return app


def signed_in_before_the_window(app: Flask, *names: str) -> list[Any]:
    """A test client for each name, with a session in the store; then maintenance is switched on."""
    clients = []
    for name in names:
        client = app.test_client()
        assert client.post(f"/sign-in/{name}").data == b"Signed in"
        assert client.get_cookie("session") is not None
        assert client.get("/").text == f"Hello, {name}!"
        clients.append(client)
    extension_of(app).enable(app=app)
    return clients


#: The refusals a signed-in visitor can get, each decided in a different place.
REFUSALS: dict[str, dict[str, str]] = {
    "prebuilt by the fast path": JSON,
    "the custom page, rendered in the app": {},
    "with Origin, after the app's after_request functions": {**JSON, **ORIGIN},
}


@pytest.mark.slow
class TestFlaskSession:
    def test_a_refused_request_never_reaches_the_session_store(
        self, tmp_path: Path, redis_server: RedisServer
    ) -> None:
        app = session_app(tmp_path, redis_server)
        [client] = signed_in_before_the_window(app, "bob")
        redis_server.reset_calls()
        for kind, headers in REFUSALS.items():
            refused = client.get("/", headers=headers)
            assert refused.status_code == 503, kind
        assert client.get("/").text == CUSTOM_PAGE
        assert redis_server.calls() == {}

        extension_of(app).disable(app=app)
        assert client.get("/").status_code == 200
        assert redis_server.calls().get("get") == 1  # served: the app reads the session

    def test_a_rule_that_may_pass_reads_the_session_once_and_never_writes_it(
        self, tmp_path: Path, redis_server: RedisServer
    ) -> None:
        app = session_app(tmp_path, redis_server, rule=True)
        user, staff = signed_in_before_the_window(app, "bob", "ada")
        redis_server.reset_calls()
        assert user.get("/").status_code == 503
        assert redis_server.calls() == {"get": 1}
        assert staff.get("/").text == "Hello, ada!"  # the rule read the store and passed

    @pytest.mark.parametrize("kind", [*REFUSALS, "a bypass rule that may pass"])
    def test_a_stopped_store_still_gets_the_503(
        self, tmp_path: Path, redis_server: RedisServer, kind: str
    ) -> None:
        app = session_app(tmp_path, redis_server, rule=kind == "a bypass rule that may pass")
        [client] = signed_in_before_the_window(app, "ada")  # staff: the rule would let her in
        redis_server.stop()
        refused = client.get("/", headers=REFUSALS.get(kind, {}))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        extension_of(app).disable(app=app)
        assert client.get("/").status_code == 500  # the store really is down: the app fails

    def test_without_the_fast_path_flask_opens_the_session_first_as_documented(
        self, tmp_path: Path, redis_server: RedisServer
    ) -> None:
        app = session_app(tmp_path, redis_server, MAINTENANCE_FAST_PATH=False)
        [client] = signed_in_before_the_window(app, "bob")
        redis_server.reset_calls()
        assert client.get("/", headers=JSON).status_code == 503
        assert redis_server.calls() == {"get": 1, "set": 1}  # opened and saved again
        redis_server.stop()
        assert client.get("/", headers=JSON).status_code == 500
        assert app.test_client().get("/", headers=JSON).status_code == 503  # no session cookie

    def test_the_recipe_sheds_visitors_without_the_store_and_lets_staff_in(
        self, load_example: LoadExample, redis_server: RedisServer
    ) -> None:
        example = load_example("server_sessions")
        app = example.create_app(redis_server.url)
        staff, visitor = app.test_client(), app.test_client()
        assert staff.post("/staff").data == b"Signed in"
        assert visitor.get("/").data == b"Hello!"
        example.maintenance.enable(app=app)
        redis_server.reset_calls()
        assert visitor.get("/").status_code == 503
        assert redis_server.calls() == {}
        assert staff.get("/").data == b"Hello, staff!"
        redis_server.stop()
        assert staff.get("/").status_code == 503
        assert visitor.get("/").status_code == 503


# -- the app's own hooks fail ------------------------------------------------------------------


def broken_app(tmp_path: Path, broken: str, *, fast_path: bool = True) -> Flask:
    """An app whose every request fails in a ``url_value_preprocessor`` or a ``before_request``.

    ``MAINTENANCE_TEMPLATE`` is set: HTML refusals render it in the app, JSON ones are prebuilt.
    """
    app = app_with_template(tmp_path)
    app.config.update(MAINTENANCE_FAST_PATH=fast_path, MAINTENANCE_TEMPLATE="maintenance.html")
    if broken == "url_value_preprocessor":

        @app.url_value_preprocessor
        def pull_lang(endpoint: str | None, values: dict[str, Any] | None) -> None:
            raise RuntimeError("the database that knows the languages is down")

    else:

        @app.before_request
        def load_account() -> None:
            raise RuntimeError("the database that knows the accounts is down")

    maintenance = Maintenance(app)
    maintenance.bypass_rule(cookie="staff")(lambda: False)

    @app.get("/")
    def index() -> str:
        return "Hello!"

    @app.post("/pay")
    @maintenance.feature("payments")
    def pay() -> str:
        return "Paid"

    return app


#: A refused request of each kind, as (method, path, headers, how maintenance is on).
HOOK_REFUSALS: dict[str, tuple[str, str, dict[str, str], dict[str, Any]]] = {
    "prebuilt by the fast path": ("GET", "/", JSON, {}),
    "the custom page, rendered in the app": ("GET", "/", {}, {}),
    "a bypass rule that may pass": ("GET", "/", {**JSON, "Cookie": "staff=1"}, {}),
    "a switched-off feature of the view": ("POST", "/pay", JSON, {"feature": "payments"}),
    "with Origin": ("GET", "/", {**JSON, **ORIGIN}, {}),
}


class TestTheAppsOwnHooks:
    @pytest.mark.parametrize("broken", ["url_value_preprocessor", "before_request"])
    @pytest.mark.parametrize("kind", HOOK_REFUSALS)
    def test_a_failing_hook_of_the_app_never_turns_the_503_into_a_500(
        self, tmp_path: Path, broken: str, kind: str
    ) -> None:
        app = broken_app(tmp_path, broken)
        method, path, headers, switch = HOOK_REFUSALS[kind]
        client = app.test_client()
        assert client.open(path, method=method, headers=headers).status_code == 500  # off: broken
        extension_of(app).enable(app=app, **switch)
        refused = client.open(path, method=method, headers=headers)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        if not headers:
            assert refused.text == CUSTOM_PAGE

    def test_without_the_fast_path_a_failing_url_value_preprocessor_fails_as_documented(
        self, tmp_path: Path
    ) -> None:
        app = broken_app(tmp_path, "url_value_preprocessor", fast_path=False)
        client = app.test_client()
        extension_of(app).enable(app=app)
        for kind, (method, path, headers, _) in HOOK_REFUSALS.items():
            assert client.open(path, method=method, headers=headers).status_code == 500, kind

    def test_without_the_fast_path_the_hook_runs_before_the_apps_before_request(self, tmp_path: Path) -> None:
        app = broken_app(tmp_path, "before_request", fast_path=False)
        client = app.test_client()
        extension_of(app).enable(app=app)
        for kind, (method, path, headers, _) in HOOK_REFUSALS.items():
            assert client.open(path, method=method, headers=headers).status_code == 503, kind


# -- Flask-Login -------------------------------------------------------------------------------


def sign_in(app: Flask, name: str, password: str, *, remember: bool = False) -> Any:
    """A new browser that signs in through the example's form; its test client."""
    client = app.test_client()
    form = {"name": name, "password": password, **({"remember": "on"} if remember else {})}
    answer = client.post("/login", data=form)
    assert (answer.status_code, answer.headers.get("Location")) == (302, "/"), answer.text
    return client


def remembered_only(app: Flask, signed: Any) -> Any:
    """A new browser that holds nothing but ``signed``'s remember-me cookie (its session ended)."""
    cookie = signed.get_cookie("remember_token")
    assert cookie is not None
    client = app.test_client()
    client.set_cookie("remember_token", cookie.value)
    return client


class TestFlaskLogin:
    @pytest.fixture
    def signin(self, load_example: LoadExample) -> ModuleType:
        require_module("flask_login", 'pip install -e ".[test]"')
        return load_example("signin")

    def test_staff_sign_in_during_the_window_and_only_admins_pass(self, signin: ModuleType) -> None:
        app = signin.app
        signin.maintenance.enable(app=app)
        visitor = app.test_client()
        assert visitor.get("/").status_code == 503
        assert visitor.get("/login").status_code == 200  # the form is open
        wrong = visitor.post("/login", data={"name": "ada", "password": "guess"})
        assert wrong.status_code == 401
        assert visitor.get("/").status_code == 503

        assert sign_in(app, "ada", "staff-only").get("/").text == "Hello, ada!"
        assert sign_in(app, "bob", "hunter2").get("/").status_code == 503  # signed in, no admin

    def test_an_admin_with_only_the_remember_me_cookie_passes(self, signin: ModuleType) -> None:
        app = signin.app
        admin = remembered_only(app, sign_in(app, "ada", "staff-only", remember=True))
        user = remembered_only(app, sign_in(app, "bob", "hunter2", remember=True))
        signin.maintenance.enable(app=app)
        assert admin.get_cookie("session") is None
        assert admin.get("/").text == "Hello, ada!"
        assert user.get("/").status_code == 503

    @pytest.mark.parametrize(
        ("cookies", "admin_passes"), [(("session",), False), ((None,), True)], ids=["session only", "none"]
    )
    def test_what_the_rule_must_name_for_remembered_admins(
        self, signin: ModuleType, tmp_path: Path, cookies: tuple[str | None, ...], admin_passes: bool
    ) -> None:
        """``cookie="session"`` alone refuses a remembered admin early; no ``cookie=`` asks the rule."""
        from flask_login import LoginManager

        remembered = remembered_only(signin.app, sign_in(signin.app, "ada", "staff-only", remember=True))
        app = Flask("variant", instance_path=str(tmp_path / "variant"))
        app.config.update(SECRET_KEY=signin.app.secret_key, MAINTENANCE_CHECK_INTERVAL=0)
        LoginManager(app).user_loader(signin.load_user)
        maintenance = Maintenance(app)
        for cookie in cookies:
            maintenance.bypass_rule(cookie=cookie)(signin.signed_in_admin)
        app.get("/")(signin.index)
        maintenance.enable(app=app)
        admin = app.test_client()
        admin.set_cookie("remember_token", remembered.get_cookie("remember_token").value)
        assert (admin.get("/").status_code == 200) is admin_passes

    def test_a_visitor_with_a_remember_me_cookie_gets_the_custom_page(
        self, signin: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        from flask_login import LoginManager

        remembered = remembered_only(signin.app, sign_in(signin.app, "bob", "hunter2", remember=True))
        app = app_with_template(tmp_path)
        app.config.update(SECRET_KEY=signin.app.secret_key, MAINTENANCE_TEMPLATE="maintenance.html")
        LoginManager(app).user_loader(signin.load_user)
        Maintenance(app).enable(app=app)
        visitor = app.test_client()
        assert visitor.get("/").text == CUSTOM_PAGE  # without the cookie, all is well
        visitor.set_cookie("remember_token", remembered.get_cookie("remember_token").value)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            refused = visitor.get("/")
        assert refused.status_code == 503
        assert refused.text == CUSTOM_PAGE
        assert not caplog.records


# -- token-authenticated admins -----------------------------------------------------------------


def assert_refused_quietly(
    client: Any, refused: dict[str, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """Each request (by its headers) gets the problem JSON 503, never the auth's 401 or its
    challenge, and nothing is logged: the recipe's rule says no without raising."""
    with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
        for kind, headers in refused.items():
            answer = client.get("/api/orders", headers=headers)
            assert answer.status_code == 503, kind
            assert answer.mimetype == "application/problem+json", kind
            assert "WWW-Authenticate" not in answer.headers, kind
    assert not caplog.records


class TestFlaskJWTExtended:
    @pytest.fixture
    def example(self, load_example: LoadExample) -> ModuleType:
        require_module("flask_jwt_extended", 'pip install -e ".[test]"')
        return load_example("jwt_admins")

    def bearer(self, example: ModuleType, expires: timedelta | None = None, **claims: Any) -> dict[str, str]:
        from flask_jwt_extended import create_access_token

        with example.app.app_context():
            token = create_access_token("ada", additional_claims=claims, expires_delta=expires)
        return {"Authorization": f"Bearer {token}"}

    def forged(self, key: str) -> dict[str, str]:
        import jwt

        claims = {"sub": "ada", "type": "access", "fresh": False, "jti": "x", "admin": True}
        return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="HS256")}

    def test_an_admin_token_passes_and_every_other_request_gets_the_503(
        self, example: ModuleType, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = example.app.test_client()
        admin = self.bearer(example, admin=True)
        expired = self.bearer(example, timedelta(seconds=-60), admin=True)
        assert client.get("/api/orders", headers=expired).status_code == 401  # off: the app's answer
        example.maintenance.enable(app=example.app)
        assert client.get("/api/orders", headers=admin).json == {"orders": []}
        refused = {
            "no token": {},
            "not an admin": self.bearer(example, admin=False),
            "expired": expired,
            "signed with another key": self.forged("not-the-key-but-just-as-long-as-it"),
            "not a token": {"Authorization": "Bearer not-a-token"},
            "another scheme": {"Authorization": "Basic YWRhOnN0YWZm"},
        }
        assert_refused_quietly(client, refused, caplog)


class TestFlaskHTTPAuth:
    @pytest.fixture
    def example(self, load_example: LoadExample) -> ModuleType:
        require_module("flask_httpauth", 'pip install -e ".[test]"')
        return load_example("httpauth_admins")

    @staticmethod
    def basic(name: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}

    def test_an_admin_by_password_or_token_passes_and_every_other_request_gets_the_503(
        self, example: ModuleType, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = example.app.test_client()
        wrong = self.basic("ada", "guess")
        assert client.get("/api/orders", headers=wrong).status_code == 401  # off: the app's answer
        example.maintenance.enable(app=example.app)
        for headers in (self.basic("ada", "staff-only"), {"Authorization": "Bearer ada-token"}):
            assert client.get("/api/orders", headers=headers).json == {"orders": [], "user": "ada"}
        refused = {
            "no credentials": {},
            "wrong password": wrong,
            "not an admin": self.basic("bob", "hunter2"),
            "wrong token": {"Authorization": "Bearer guess"},
            "a user's token": {"Authorization": "Bearer bob-token"},
            "malformed": {"Authorization": "Basic !!!"},
        }
        assert_refused_quietly(client, refused, caplog)


# -- Flask-Talisman ------------------------------------------------------------------------------


def talisman_app(load_example: LoadExample, *, recipe: bool, fast_path: bool, **config: Any) -> Flask:
    """The security-headers example, or the same app with Talisman's default policy."""
    require_module("flask_talisman", 'pip install -e ".[test]"')
    example = load_example("security_headers")
    if not recipe:
        from flask_talisman.talisman import DEFAULT_CSP_POLICY

        example.POLICY = DEFAULT_CSP_POLICY
    config.update(MAINTENANCE_FAST_PATH=fast_path, MAINTENANCE_CHECK_INTERVAL=0)
    app: Flask = example.create_app(config)
    return app


#: How a browser reaches a refusal that Flask's request cycle finishes (Talisman's headers on
#: it), as (MAINTENANCE_FAST_PATH, whether a form is sent: Chromium adds ``Origin`` to a POST).
THROUGH_THE_APP = {
    "fast path off, a page": (False, False),
    "fast path on, a form sent (Origin)": (True, True),
}


class TestTalismanHeaders:
    @pytest.mark.parametrize("how", THROUGH_THE_APP)
    def test_refusals_through_the_app_carry_talismans_policy_with_the_page_hashes(
        self, load_example: LoadExample, how: str
    ) -> None:
        fast_path, post = THROUGH_THE_APP[how]
        app = talisman_app(load_example, recipe=True, fast_path=fast_path)
        extension_of(app).enable(app=app)
        client = app.test_client()
        refused = client.post("/orders", headers=ORIGIN) if post else client.get("/")
        assert refused.status_code == 503
        [policy] = refused.headers.getlist("Content-Security-Policy")
        assert policy != PAGE_CSP
        assert f"style-src 'self' {PAGE_CSP_SOURCES['style-src']}" in policy
        assert f"script-src 'self' {PAGE_CSP_SOURCES['script-src']}" in policy
        assert refused.headers["X-Frame-Options"] == "SAMEORIGIN"  # Talisman's headers, all of them

    def test_plain_refusals_carry_the_pages_own_policy_and_the_configured_headers_only(
        self, load_example: LoadExample
    ) -> None:
        hsts = "max-age=31556926; includeSubDomains"
        app = talisman_app(
            load_example,
            recipe=False,
            fast_path=True,
            MAINTENANCE_RESPONSE_HEADERS={"Strict-Transport-Security": hsts},
        )
        extension_of(app).enable(app=app)
        refused = app.test_client().get("/", base_url="https://localhost")
        assert refused.status_code == 503
        assert refused.headers.getlist("Content-Security-Policy") == [PAGE_CSP]
        assert refused.headers.getlist("Strict-Transport-Security") == [hsts]
        assert "X-Frame-Options" not in refused.headers  # Talisman never saw this request


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """``app`` on a real HTTP server on a free loopback port, in a thread; its origin."""
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        server.server_close()


#: What the page's script writes when it runs (flask_maintenance/responses.py), and what the
#: page of a refused form says then (it never reloads itself).
SCRIPT_RAN = "This page reloads by itself as soon as we are back."
WRITE_SCRIPT_RAN = "This page tells you as soon as we are back."
#: The page's background when its style applies: #f5f7fa.
STYLED = "rgb(245, 247, 250)"


def seen_in_chromium(browser: Browser, app: Flask, *, post: bool) -> tuple[int, str, str, list[str]]:
    """What Chromium shows for a refusal: status, background, ``#live`` text, CSP complaints.

    ``post``: the visitor sends a form, so Chromium adds an ``Origin`` header; the form's page
    comes from Playwright, the app sees only the POST.
    """
    extension_of(app).enable(app=app)
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT * 1000)
    try:
        page = context.new_page()
        complaints: list[str] = []
        page.on("console", lambda message: complaints.append(message.text))
        with serving(app) as origin:
            if post:
                form = f'<form method="post" action="{origin}/orders"><button>Order</button></form>'
                page.route(
                    f"{origin}/basket", lambda route: route.fulfill(body=form, content_type="text/html")
                )
                page.goto(f"{origin}/basket")
                with page.expect_navigation() as navigation:
                    page.click("button")
                response = navigation.value
            else:
                response = page.goto(origin + "/")
            assert response is not None
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            live = page.inner_text("#live")
        return response.status, background, live, [text for text in complaints if "Content Security" in text]
    finally:
        context.close()


@pytest.fixture(scope="class")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium for one test class: while it is open, Playwright runs an event loop in the main
    thread, where Flask's async support (asgiref) then refuses to run async views."""
    from browser_support import chromium

    with chromium(tmp_path_factory.mktemp("chromium")) as running:
        yield running


@pytest.mark.slow
class TestTalismanInChromium:
    @pytest.mark.parametrize("how", THROUGH_THE_APP)
    def test_the_page_works_under_talismans_policy_with_the_recipe(
        self, browser: Browser, load_example: LoadExample, how: str
    ) -> None:
        fast_path, post = THROUGH_THE_APP[how]
        app = talisman_app(load_example, recipe=True, fast_path=fast_path)
        ran = WRITE_SCRIPT_RAN if post else SCRIPT_RAN
        assert seen_in_chromium(browser, app, post=post) == (503, STYLED, ran, [])

    @pytest.mark.parametrize("how", THROUGH_THE_APP)
    def test_without_the_recipe_talismans_default_policy_blocks_the_page(
        self, browser: Browser, load_example: LoadExample, how: str
    ) -> None:
        """The companion of the test above: the recipe is what makes the page work."""
        fast_path, post = THROUGH_THE_APP[how]
        app = talisman_app(load_example, recipe=False, fast_path=fast_path)
        status, background, live, complaints = seen_in_chromium(browser, app, post=post)
        assert status == 503
        assert background != STYLED
        # A refused form's page says nothing there without its script: a reload would send the
        # form again.
        assert live == ("" if post else "Reload this page to check whether we are back.")
        assert len(complaints) == 2  # the inline style and the inline script

    def test_a_plain_refusal_works_whatever_talismans_policy(
        self, browser: Browser, load_example: LoadExample
    ) -> None:
        app = talisman_app(load_example, recipe=False, fast_path=True)
        assert seen_in_chromium(browser, app, post=False) == (503, STYLED, SCRIPT_RAN, [])


# -- async views, hooks and rules ----------------------------------------------------------------


class TestAsync:
    @pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "request hook"])
    def test_async_views_hooks_and_rules_on_and_off(
        self, load_example: LoadExample, fast_path: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        require_module("asgiref", 'pip install "flask[async]"')
        example = load_example("async_app")
        app = example.create_app({"MAINTENANCE_FAST_PATH": fast_path})
        guest, staff, other = app.test_client(), app.test_client(), app.test_client()
        assert staff.post("/sign-in/ada").data == b"Signed in"
        assert other.post("/sign-in/bob").data == b"Signed in"
        assert guest.get("/").data == b"Hello, guest!"

        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            example.maintenance.enable(app=app)
            assert guest.get("/").status_code == 503
            assert other.get("/").status_code == 503
            assert staff.get("/").data == b"Hello, ada!"  # the async rule, hook and view
            assert other.post("/sign-in/ada").status_code == 503
        assert not caplog.records  # the async rule was awaited, not counted False with a warning

        example.maintenance.disable(app=app)
        assert other.get("/").data == b"Hello, bob!"

    def test_a_rule_that_forgets_to_await_counts_as_false_and_is_logged_once(
        self, load_example: LoadExample, make_app: AppFactory, caplog: pytest.LogCaptureFixture
    ) -> None:
        example = load_example("async_app")
        extension = Maintenance()
        extension.bypass_rule(lambda: example.is_staff("ada"))  # a coroutine, never awaited
        app = make_app(extension)
        extension.enable(app=app)
        with caplog.at_level(logging.WARNING, logger="flask_maintenance"):
            for _ in range(3):
                assert app.test_client().get("/").status_code == 503
        [warning] = caplog.records
        assert "returned an awaitable" in warning.getMessage()
