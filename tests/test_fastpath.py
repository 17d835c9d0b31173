"""The WSGI fast path answers exactly like the hook, and leaves to the hook what it can't decide."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request, request_started
from jinja2 import DictLoader
from werkzeug.test import TestResponse

from flask_maintenance import Maintenance

AppFactory = Callable[..., Flask]


class Counted:
    """An app plus how many requests reached Flask (the fast path answers before that)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.reached_flask = 0
        request_started.connect(self._started, app, weak=False)

    def _started(self, sender: Flask, **extra: Any) -> None:
        self.reached_flask += 1

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        return self.app.test_client().open(*args, **kwargs)

    def disconnect(self) -> None:
        request_started.disconnect(self._started, self.app)


@pytest.fixture
def pair(make_app: AppFactory) -> Iterator[Callable[..., tuple[Counted, Counted]]]:
    """Two apps that read the same lock file: one with the fast path, one without."""
    made: list[Counted] = []

    def build(**config: Any) -> tuple[Counted, Counted]:
        fast = Counted(make_app(MAINTENANCE_FAST_PATH=True, **config))
        hook = Counted(make_app(MAINTENANCE_FAST_PATH=False, **config))
        made.extend((fast, hook))
        return fast, hook

    yield build
    for counted in made:
        counted.disconnect()


def wire(response: TestResponse) -> tuple[str, list[tuple[str, str]], bytes]:
    return response.status, list(response.headers.items()), response.get_data()


def place(lock_file: Path, record: dict[str, object]) -> None:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.write_text(json.dumps(record))


REQUESTS = [
    pytest.param("GET", "/", {}, id="html page"),
    pytest.param("GET", "/", {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, id="browser"),
    pytest.param("GET", "/", {"Accept": "application/json"}, id="accept json"),
    pytest.param("GET", "/api/items", {}, id="api json"),
    pytest.param("GET", "/no/such/page", {}, id="404 path"),
    pytest.param("HEAD", "/", {}, id="head html"),
    pytest.param("HEAD", "/api/items", {}, id="head json"),
    pytest.param("POST", "/form", {"Content-Type": "application/x-www-form-urlencoded"}, id="form post"),
    pytest.param("DELETE", "/api/items", {}, id="api delete"),
]

STATES = [
    pytest.param({}, id="empty lock"),
    pytest.param({"mode": "full", "retry": 17, "message": "Swapping <disks> & cables"}, id="full"),
    pytest.param({"mode": "readonly", "retry": 5, "message": "Wartung läuft"}, id="readonly"),
    pytest.param({"mode": "full", "ends_at": "2001-02-03T04:05:06Z"}, id="ends_at passed"),
]


class TestSameAnswer:
    @pytest.mark.parametrize("record", STATES)
    @pytest.mark.parametrize(("method", "path", "headers"), REQUESTS)
    def test_fast_path_and_hook_send_byte_identical_answers(
        self,
        pair: Callable[..., tuple[Counted, Counted]],
        record: dict[str, object],
        method: str,
        path: str,
        headers: dict[str, str],
    ) -> None:
        fast, hook = pair()
        place(Path(fast.app.config["MAINTENANCE_LOCK_FILE"]), record)
        from_fast = fast.open(path, method=method, headers=headers, data=b"a=1" if method == "POST" else None)
        from_hook = hook.open(path, method=method, headers=headers, data=b"a=1" if method == "POST" else None)
        assert wire(from_fast) == wire(from_hook)
        if from_hook.status_code == 503:
            assert fast.reached_flask == 0  # really answered by the fast path
        assert hook.reached_flask == 1

    def test_readonly_reads_pass_through_both(self, pair: Callable[..., tuple[Counted, Counted]]) -> None:
        fast, hook = pair()
        place(Path(fast.app.config["MAINTENANCE_LOCK_FILE"]), {"mode": "readonly"})
        for counted in (fast, hook):
            assert counted.open("/", method="GET").get_data(as_text=True) == "home page"
            assert counted.open("/api/items", method="OPTIONS").status_code == 200
        assert fast.reached_flask == hook.reached_flask == 2

    def test_head_has_the_length_of_the_get(self, pair: Callable[..., tuple[Counted, Counted]]) -> None:
        fast, _ = pair()
        place(Path(fast.app.config["MAINTENANCE_LOCK_FILE"]), {})
        get = fast.open("/", method="GET")
        head = fast.open("/", method="HEAD")
        assert head.get_data() == b""
        assert head.headers["Content-Length"] == str(len(get.get_data())) != "0"

    def test_off_and_banner_mode_reach_the_app(self, make_app: AppFactory) -> None:
        fast = Counted(make_app())
        try:
            assert fast.open("/").get_data(as_text=True) == "home page"
            fast.app.extensions["maintenance"].enable(mode="banner", message="hi", app=fast.app)
            response = fast.open("/form", method="POST")
            assert response.get_data(as_text=True) == "form saved"
            assert response.headers["X-Maintenance-Banner"] == "hi"
            assert fast.reached_flask == 2
        finally:
            fast.disconnect()


class TestFallThrough:
    """Requests the fast path cannot decide from the environ alone: it finishes them in a request
    context of its own (Flask's request cycle, hooks and session are not involved) and sends the
    same answer as the hook; only the requests that pass reach the app."""

    def test_an_allowed_address(self, make_app: AppFactory) -> None:
        fast = Counted(make_app(MAINTENANCE_ALLOWED_IPS=["10.0.0.0/8"]))
        try:
            fast.app.extensions["maintenance"].enable(app=fast.app)
            assert fast.open("/", environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 200
            assert fast.reached_flask == 1
            assert fast.open("/", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 503
            assert fast.reached_flask == 1
        finally:
            fast.disconnect()

    @pytest.mark.parametrize("fast", [True, False])
    def test_leading_slashes_are_folded_like_flask_does(self, make_app: AppFactory, fast: bool) -> None:
        app = make_app(MAINTENANCE_ALLOWED_PATHS=["/health"], MAINTENANCE_FAST_PATH=fast)
        app.extensions["maintenance"].enable(app=app)
        client = app.test_client()
        served = client.get("/", environ_overrides={"PATH_INFO": "//health/live"})
        assert served.get_data(as_text=True) == "alive"
        refused = client.get("/", environ_overrides={"PATH_INFO": "//health-x"})
        assert refused.status_code == 503

    def test_an_allowed_path(self, make_app: AppFactory) -> None:
        fast = Counted(make_app(MAINTENANCE_ALLOWED_PATHS=["/health"]))
        try:
            fast.app.extensions["maintenance"].enable(app=fast.app)
            assert fast.open("/health/live").get_data(as_text=True) == "alive"
            assert fast.open("/_maintenance").status_code == 200
            assert fast.reached_flask == 2
        finally:
            fast.disconnect()

    def test_a_bypass_cookie(self, pair: Callable[..., tuple[Counted, Counted]]) -> None:
        fast, hook = pair()
        fast.app.extensions["maintenance"].enable(secret="open-sesame-123", app=fast.app)
        client = fast.app.test_client()
        client.get("/_maintenance/bypass/open-sesame-123")
        assert client.get("/").get_data(as_text=True) == "home page"
        assert fast.reached_flask == 2  # the bypass link, then the admin's page
        # A cookie by that name that does not verify is refused where it is seen, like no
        # cookie at all: it never reaches Flask (whose session may be down), same answer.
        forged = fast.app.test_client()
        forged.set_cookie("maintenance_bypass", "forged")
        from_fast = forged.get("/")
        assert from_fast.status_code == 503
        assert wire(from_fast) == wire(hook.open("/"))
        assert fast.reached_flask == 2

    def test_registered_bypass_rules(self, make_app: AppFactory) -> None:
        maintenance = Maintenance()

        @maintenance.bypass_rule
        def admin() -> bool:
            return request.args.get("admin") == "yes"

        fast = Counted(make_app(maintenance))
        hook = Counted(make_app(Maintenance(), MAINTENANCE_FAST_PATH=False))
        try:
            maintenance.enable(app=fast.app)
            assert fast.open("/?admin=yes").status_code == 200
            refused = fast.open("/")
            assert refused.status_code == 503
            assert fast.reached_flask == 1  # only the admin's request
            assert wire(refused) == wire(hook.open("/"))
        finally:
            fast.disconnect()
            hook.disconnect()

    def test_a_rule_that_needs_a_cookie_leaves_requests_without_it_to_the_fast_path(
        self, make_app: AppFactory
    ) -> None:
        maintenance = Maintenance()

        @maintenance.bypass_rule(cookie="session")
        def signed_in_admin() -> bool:
            return request.cookies.get("session") == "admin"

        fast = Counted(make_app(maintenance))
        try:
            maintenance.enable(app=fast.app)
            assert fast.open("/").status_code == 503
            assert fast.reached_flask == 0  # no session cookie: the rule could never pass
            client = fast.app.test_client()
            client.set_cookie("session", "admin")
            assert client.get("/").status_code == 200
            client.set_cookie("session", "visitor")
            assert client.get("/").status_code == 503
            assert fast.reached_flask == 1  # the rule ran for both; only the admin reached the app
        finally:
            fast.disconnect()

    def test_a_custom_template_for_html_but_not_for_json(self, make_app: AppFactory) -> None:
        fast = Counted(make_app(MAINTENANCE_TEMPLATE="down.html"))
        fast.app.jinja_loader = DictLoader({"down.html": "<p>Our own page, back in {{ retry_after }}s</p>"})
        try:
            fast.app.extensions["maintenance"].enable(retry=12, app=fast.app)
            page = fast.open("/")
            assert page.status_code == 503
            assert page.get_data(as_text=True) == "<p>Our own page, back in 12s</p>"
            problem = fast.open("/api/items")
            assert problem.mimetype == "application/problem+json"
            assert fast.reached_flask == 0  # rendered in the fast path's own request context
        finally:
            fast.disconnect()
