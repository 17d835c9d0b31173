"""Hostile input: messages, bypass tokens and cookies, forwarded addresses, the status document
and the bypass redirect, all in the hands of someone trying to break or abuse them.

Requests go through the Flask test client only.
"""

from __future__ import annotations

import getpass
import hashlib
import html
import json
import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import itsdangerous
import pytest
from conftest import STATUS_KEYS
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import TestResponse

import flask_maintenance.bypass
from flask_maintenance import Maintenance
from flask_maintenance.bypass import BypassCookie, hash_token, new_token
from flask_maintenance.model import State
from flask_maintenance.rules import MAX_MESSAGE_LENGTH
from flask_maintenance.texts import texts

AppFactory = Callable[..., Flask]

COOKIE = "maintenance_bypass"
SECRET_KEY = "test-secret"  # what conftest's make_app sets


def place(lock: Path, content: bytes) -> None:
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_bytes(content)


def page_detail(response: TestResponse) -> str:
    """The message paragraph of the built-in page, unescaped."""
    match = re.search(r'<p class="detail">(.*?)</p>', response.get_data(as_text=True), re.DOTALL)
    assert match, response.get_data(as_text=True)[:500]
    return html.unescape(match.group(1))


@pytest.fixture(params=[True, False], ids=["fast-path", "hook-only"])
def fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


# -- messages -----------------------------------------------------------------------------------

SCRIPT = "<script>alert('pwned')</script>"
HOSTILE_MESSAGES = {
    "script": f"Back soon {SCRIPT}",
    "quotes": '"\'><img src=x onerror=alert(1)> `${x}` \\" &amp; &lt;',
    "closing tags": "</p></main></body><script>document.write(1)</script><!--",
    "json breakers": '"}, "status": 200, "x": {"',
    "unicode and controls": "caf\u00e9 \u2028\u2029 \u202e gnp.exe \x07 \t tab",
    "very long": ("<script>x</script>" * 200)[:MAX_MESSAGE_LENGTH],
}


@pytest.mark.parametrize("message", HOSTILE_MESSAGES.values(), ids=list(HOSTILE_MESSAGES))
def test_the_message_is_html_escaped_in_the_page_and_json_escaped_in_the_api_body(
    make_app: AppFactory, fast: bool, message: str
) -> None:
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(message=message, app=app)
    client = app.test_client()

    page = client.get("/")
    assert page.status_code == 503
    body = page.get_data(as_text=True)
    assert page_detail(page) == message
    assert "<script>alert" not in body and "<script>x" not in body and "<img" not in body
    assert "<script>document" not in body
    # The page's one script is its own.
    assert body.count("<script>") == 1

    api = client.get("/api/items")
    assert api.status_code == 503
    assert json.loads(api.get_data())["detail"] == message

    status = client.get("/_maintenance")
    assert json.loads(status.get_data())["message"] == message

    # The banner header stays one printable ASCII line, whatever the message.
    banner = page.headers["X-Maintenance-Banner"]
    assert banner.isascii() and banner.isprintable() and "\r" not in banner and "\n" not in banner


def test_a_message_longer_than_the_limit_in_the_lock_file_is_cut_not_refused(
    app: Flask, lock_file: Path
) -> None:
    message = SCRIPT * 500  # 15 000 characters
    place(lock_file, State(active=True, message=message).to_json())
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 503
    assert page_detail(page) == message[:MAX_MESSAGE_LENGTH]
    assert "<script>alert" not in page.get_data(as_text=True)
    api = client.get("/api/items")
    assert json.loads(api.get_data())["detail"] == message[:MAX_MESSAGE_LENGTH]


def test_non_utf8_bytes_in_the_lock_file_fail_closed_to_the_default_page(app: Flask, lock_file: Path) -> None:
    place(lock_file, b'{"mode": "banner", "message": "caf\xe9 <script>alert(1)</script>"}')
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 503
    page.get_data().decode("utf-8")  # the page itself is valid UTF-8
    assert page_detail(page) == texts().full_detail
    assert b"<script>alert" not in page.get_data() and b"\xe9" not in page.get_data()
    api = client.get("/api/items")
    assert api.status_code == 503
    assert json.loads(api.get_data())["detail"] == texts().full_detail


@pytest.mark.parametrize("mode", ["full", "readonly", "banner"])
def test_a_message_with_lone_surrogates_never_breaks_a_response(
    make_app: AppFactory, fast: bool, mode: str
) -> None:
    """``flask maintenance on --message $'caf\\xe9'`` under a UTF-8 locale stores ``"caf\\udce9"``:
    valid JSON that no page or header can encode as it is."""
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    lock = Path(app.config["MAINTENANCE_LOCK_FILE"])
    place(lock, json.dumps({"mode": mode, "message": f"caf\udce9 \ud800 {SCRIPT}"}).encode())
    shown = f"caf? ? {SCRIPT}"
    client = app.test_client()
    page = client.post("/form")
    assert page.status_code == (200 if mode == "banner" else 503), page.get_data()[:300]
    assert page.headers["X-Maintenance-Banner"]
    if mode != "banner":
        assert page_detail(page) == shown
        assert "<script>alert" not in page.get_data(as_text=True)
        assert json.loads(client.post("/api/items").get_data())["detail"] == shown
    assert client.get("/").status_code in (200, 503)
    assert json.loads(client.get("/_maintenance").get_data())["message"] == shown


def test_a_non_utf8_message_from_the_real_cli_never_breaks_a_response(
    run_flask: Callable[..., Any], make_app: AppFactory, tmp_path: Path
) -> None:
    # subprocess turns "\udce9" back into the byte 0xe9 on the command line.
    result = run_flask("maintenance", "on", "--mode", "banner", "--message", "caf\udce9 <b>bold</b>")
    assert result.returncode == 0, result.stderr
    app = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "maintenance.lock"))
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.headers["X-Maintenance-Banner"] == "caf? <b>bold</b>"
    status = app.test_client().get("/_maintenance").get_json()
    assert status["message"] == "caf? <b>bold</b>"


def test_a_non_utf8_message_in_a_scheduled_window_never_breaks_a_response(
    run_flask: Callable[..., Any], make_app: AppFactory, tmp_path: Path
) -> None:
    starts = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run_flask("maintenance", "schedule", "--at", starts, "--message", "caf\udce9 <i>x</i>")
    assert result.returncode == 0, result.stderr
    app = make_app(MAINTENANCE_LOCK_FILE=str(tmp_path / "maintenance.lock"))
    response = app.test_client().get("/")
    assert response.status_code == 200  # announced, not yet started
    assert response.headers["X-Maintenance-Banner"].startswith("Scheduled maintenance")


# -- bypass tokens --------------------------------------------------------------------------------

TOKEN = new_token()


@pytest.fixture
def guarded(make_app: AppFactory, fast: bool) -> Flask:
    """An app in full maintenance whose bypass secret is ``TOKEN``."""
    app = make_app(MAINTENANCE_FAST_PATH=fast)
    app.extensions["maintenance"].enable(secret=TOKEN, message="Closed", app=app)
    return app


def visit(app: Flask, token_path: str, **kwargs: Any) -> tuple[TestResponse, TestResponse]:
    """Open a bypass link (``token_path`` is already URL-encoded), then the home page."""
    client = app.test_client()
    link = client.get(f"/_maintenance/bypass/{token_path}", **kwargs)
    return link, client.get("/")


def test_the_right_token_does_bypass(guarded: Flask) -> None:
    """The control: everything below is refused only because it is wrong."""
    link, home = visit(guarded, TOKEN)
    assert link.status_code == 303 and COOKIE in link.headers.get("Set-Cookie", "")
    assert home.status_code == 200 and home.get_data() == b"home page"


BAD_TOKENS = {
    "wrong": new_token(),
    "truncated by one": TOKEN[:-1],
    "first half": TOKEN[: len(TOKEN) // 2],
    "one character": TOKEN[0],
    "longer by one": TOKEN + "A",
    "over-long": TOKEN * 20,
    "over-long 100k": "A" * 100_000,
    "upper-cased": TOKEN.upper() if TOKEN.upper() != TOKEN else TOKEN.lower(),
    "the token hash": hash_token(TOKEN),
    "dot-dot before": f"../{TOKEN}",
    "dot-dot after": f"{TOKEN}/..",
    "dot-dot only": "..",
    "encoded slash": f"%2f{TOKEN}",
    "encoded dot-dot slash": f"..%2f..%2f{TOKEN}",
    "encoded slash inside": f"{TOKEN[:5]}%2f{TOKEN[5:]}",
    "nul after": f"{TOKEN}%00",
    "nul inside": f"{TOKEN[:5]}%00{TOKEN[5:]}",
    "nul only": "%00",
    "percent junk": "%ff%fe%c0%af",
    "unicode": "\u0430" * 32,  # Cyrillic a, looks like a
    "space padded": f"%20{TOKEN}%20",
    "query trick": f"x?next=//evil.example&t={TOKEN}",
}


@pytest.mark.parametrize("token_path", BAD_TOKENS.values(), ids=list(BAD_TOKENS))
def test_a_bad_token_never_bypasses_and_never_500s(guarded: Flask, token_path: str) -> None:
    link, home = visit(guarded, token_path)
    assert link.status_code in (400, 403, 404, 405, 308), (link.status_code, link.get_data()[:200])
    assert COOKIE not in link.headers.get("Set-Cookie", "")
    assert home.status_code == 503


def test_an_empty_token_never_bypasses_and_never_500s(guarded: Flask) -> None:
    for path in ("/_maintenance/bypass/", "/_maintenance/bypass", "/_maintenance/bypass//"):
        link = guarded.test_client().get(path)
        assert link.status_code in (403, 404, 405, 308), path
        assert "Set-Cookie" not in link.headers


def test_no_token_works_while_maintenance_has_no_secret_or_is_off(app: Flask) -> None:
    extension = app.extensions["maintenance"]
    extension.enable(app=app)  # no secret
    for token in (TOKEN, "", "x", "None", "null"):
        link, home = visit(app, token or "%20")
        assert link.status_code in (403, 404) and home.status_code == 503
    extension.disable(app=app)
    link, _ = visit(app, TOKEN)
    assert link.status_code == 403


def test_a_lock_file_with_a_non_ascii_token_hash_never_500s(app: Flask, lock_file: Path) -> None:
    place(lock_file, json.dumps({"token_hash": "\u00e9" * 64, "window": "\u00e9\u00e9"}).encode())
    link, home = visit(app, TOKEN)
    assert link.status_code == 403
    assert home.status_code == 503
    client = app.test_client()
    client.set_cookie(COOKIE, "anything")
    assert client.get("/").status_code == 503


def test_the_token_is_compared_in_constant_time(guarded: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    real = flask_maintenance.bypass.hmac.compare_digest
    calls: list[tuple[Any, Any]] = []

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(flask_maintenance.bypass.hmac, "compare_digest", spy)
    wrong = new_token()
    link, _ = visit(guarded, wrong)
    assert link.status_code == 403
    assert calls, "the token was not compared with hmac.compare_digest"
    compared = [tuple(x.decode() if isinstance(x, bytes) else x for x in pair) for pair in calls]
    assert (hash_token(wrong), hash_token(TOKEN)) in compared
    calls.clear()
    link, _ = visit(guarded, TOKEN)
    assert link.status_code == 303 and calls


def test_the_token_never_appears_in_the_lock_file_the_status_json_or_the_logs(
    app: Flask, lock_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The real CLI path: `flask maintenance on --secret` prints the link once, and only there.
    result = app.test_cli_runner().invoke(args=["maintenance", "on", "--secret", "--message", "Closed"])
    assert result.exit_code == 0, result.output
    found = re.search(r"/_maintenance/bypass/(\S+)", result.output)
    assert found, result.output
    token = found.group(1)
    client = app.test_client()
    assert client.get("/").status_code == 503
    link = client.get(f"/_maintenance/bypass/{token}?next=/form")
    assert link.status_code == 303
    assert client.get("/").status_code == 200
    client.get(f"/_maintenance/bypass/{token}x")  # a wrong one is not logged either
    status = client.get("/_maintenance")

    stored = lock_file.read_bytes()
    assert token.encode() not in stored
    assert hash_token(token).encode() in stored  # what is kept instead
    assert token not in status.get_data(as_text=True)
    assert token not in caplog.text
    for record in caplog.records:
        assert token not in record.getMessage() and token not in str(record.args)
    # The status command shows no token either.
    shown = app.test_cli_runner().invoke(args=["maintenance", "status", "--json"])
    assert token not in shown.output and hash_token(token) not in shown.output


# -- bypass cookies -------------------------------------------------------------------------------


def forge(window: str, token_hash: str, secret_key: str) -> str:
    serializer = itsdangerous.URLSafeTimedSerializer(f"{secret_key}:{token_hash}", salt=BypassCookie.salt)
    return serializer.dumps(window)


def current(app: Flask) -> State:
    state: State = app.extensions["maintenance"].status(app=app)
    return state


def test_a_cookie_signed_with_another_key_does_not_bypass(guarded: Flask) -> None:
    state = current(guarded)
    assert state.window and state.token_hash
    client = guarded.test_client()
    client.set_cookie(COOKIE, forge(state.window, state.token_hash, "test-secret"))
    assert client.get("/").status_code == 200  # the control: the real key does bypass
    for key, token_hash in (
        ("another-secret", state.token_hash),
        ("", state.token_hash),
        (SECRET_KEY, hash_token("another token")),
        (SECRET_KEY, ""),
    ):
        client = guarded.test_client()
        client.set_cookie(COOKIE, forge(state.window, token_hash, key))
        assert client.get("/").status_code == 503, (key, token_hash)


@pytest.mark.parametrize(
    "value",
    ["1", "true", "", "x" * 4000, "e30.e30.e30", ".", "%00", "\u00e9", "a.b", "IjEi.ZXhwaXJlZA.c2ln"],
)
def test_a_made_up_cookie_does_not_bypass(guarded: Flask, value: str) -> None:
    client = guarded.test_client()
    client.set_cookie(COOKIE, value)
    assert client.get("/").status_code == 503


def test_an_expired_cookie_does_not_bypass(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    max_age = 3600
    app = make_app(MAINTENANCE_BYPASS_MAX_AGE=max_age)
    app.extensions["maintenance"].enable(secret=TOKEN, app=app)
    client = app.test_client()
    issued_at = int(time.time()) - max_age - 5
    with monkeypatch.context() as patched:
        patched.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: issued_at)
        link = client.get(f"/_maintenance/bypass/{TOKEN}")
    assert link.status_code == 303
    assert client.get("/").status_code == 503
    # The control: the same link now gives a cookie that works.
    client.get(f"/_maintenance/bypass/{TOKEN}")
    assert client.get("/").status_code == 200


def test_a_cookie_from_a_previous_window_does_not_bypass(guarded: Flask) -> None:
    extension = guarded.extensions["maintenance"]
    client = guarded.test_client()
    client.get(f"/_maintenance/bypass/{TOKEN}")
    assert client.get("/").status_code == 200
    old_cookie = client.get_cookie(COOKIE)
    assert old_cookie is not None
    # A new window with the very same secret: the window id changes, the old cookie dies.
    extension.enable(secret=TOKEN, app=guarded)
    assert client.get("/").status_code == 503
    # Off and on again without a secret: no cookie works at all.
    extension.disable(app=guarded)
    extension.enable(app=guarded)
    client.set_cookie(COOKIE, old_cookie.value)
    assert client.get("/").status_code == 503


# -- forwarded addresses --------------------------------------------------------------------------

ALLOWED = "203.0.113.0/24"
SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Real-IP": "203.0.113.7",
    "Forwarded": "for=203.0.113.7",
    "Client-IP": "203.0.113.7",
}


def build_app(tmp_path: Path, *, proxy_fix: str, fast: bool) -> Flask:
    """An app allowing ``ALLOWED``; ProxyFix ``"none"``, applied ``"before"`` or ``"after"`` init_app."""
    app = Flask("proxied", instance_path=str(tmp_path / "instance"))
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        MAINTENANCE_CHECK_INTERVAL=0,
        MAINTENANCE_ALLOWED_IPS=[ALLOWED],
        MAINTENANCE_FAST_PATH=fast,
    )
    app.get("/")(lambda: "home page")
    if proxy_fix == "before":
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    Maintenance(app)
    if proxy_fix == "after":
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    app.extensions["maintenance"].enable(app=app)
    return app


def test_spoofed_forwarding_headers_do_not_pass_the_ip_allowlist_without_proxy_fix(
    tmp_path: Path, fast: bool
) -> None:
    app = build_app(tmp_path, proxy_fix="none", fast=fast)
    client = app.test_client()
    for name, value in SPOOFED.items():
        assert client.get("/", headers={name: value}).status_code == 503, name
    assert client.get("/", headers=SPOOFED).status_code == 503
    # The control: the same address as the real peer does pass.
    assert client.get("/", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 200


@pytest.mark.parametrize("proxy_fix", ["before", "after"], ids=["proxyfix-inside", "proxyfix-outside"])
def test_with_proxy_fix_the_forwarded_address_passes_the_ip_allowlist(
    tmp_path: Path, fast: bool, proxy_fix: str
) -> None:
    app = build_app(tmp_path, proxy_fix=proxy_fix, fast=fast)
    client = app.test_client()
    assert client.get("/", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    assert client.get("/", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 503
    assert client.get("/").status_code == 503
    # A client that sends its own X-Forwarded-For through the one trusted proxy: the proxy
    # appends the real address, and ProxyFix (x_for=1) trusts only that last hop.
    spoofed_through_proxy = {"X-Forwarded-For": "203.0.113.7, 198.51.100.7"}
    assert client.get("/", headers=spoofed_through_proxy).status_code == 503
    assert client.get("/", headers={"X-Real-IP": "203.0.113.7"}).status_code == 503


# -- the status document --------------------------------------------------------------------------


def test_the_status_endpoint_reveals_no_secret_allowlist_user_host_or_path(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(
        MAINTENANCE_ALLOWED_IPS=["198.51.100.0/24", "2001:db8::/32"], SECRET_KEY="s3cr3t-key-value"
    )
    extension = app.extensions["maintenance"]
    state = extension.enable(
        secret=TOKEN, message="Closed", ends_at=datetime.now(timezone.utc) + timedelta(hours=1), app=app
    )
    response = app.test_client().get("/_maintenance")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    document = response.get_json()
    text = response.get_data(as_text=True)
    assert set(document) <= STATUS_KEYS, set(document) - STATUS_KEYS
    assert document["active"] is True and document["message"] == "Closed"

    lock_file = app.config["MAINTENANCE_LOCK_FILE"]
    for secret in (
        TOKEN,
        hash_token(TOKEN),
        state.token_hash,
        state.window,
        "s3cr3t-key-value",
        "198.51.100",
        "2001:db8",
        lock_file,
        str(tmp_path),
        "maintenance.lock",
        hashlib.sha256(b"s3cr3t-key-value").hexdigest(),
    ):
        assert secret and secret not in text, secret
    values = json.dumps(list(_leaves(document)))
    for who in (getpass.getuser(), socket.gethostname()):
        assert json.dumps(who) not in values, who
    for key in ("user", "host", "window", "token_hash", "secret", "backend", "lock_file", "allowed_ips"):
        assert key not in text


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


# -- the bypass redirect --------------------------------------------------------------------------

OFF_SITE = [
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "https://evil.example",
    "http://evil.example/",
    "HTTPS://evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    " //evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "/\r\nLocation: https://evil.example",
    "/\x00//evil.example",
    "evil.example",
    "%2F%2Fevil.example",
    "/" + "a" * 5000,
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_the_bypass_redirect_never_leaves_the_site(guarded: Flask, target: str) -> None:
    link = guarded.test_client().get(f"/_maintenance/bypass/{TOKEN}", query_string={"next": target})
    assert link.status_code == 303
    location = link.headers["Location"]
    assert location == "/", (target, location)


@pytest.mark.parametrize("target", ["/form", "/api/items?page=2", "/a/b/../c", "/%2F%2Fevil.example"])
def test_the_bypass_redirect_keeps_a_path_on_this_site(guarded: Flask, target: str) -> None:
    link = guarded.test_client().get(f"/_maintenance/bypass/{TOKEN}", query_string={"next": target})
    assert link.status_code == 303
    location = link.headers["Location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc) in (("", ""), ("http", "localhost")), location
    assert parts.path.startswith("/") and not parts.path.startswith("//"), location
