"""`flask maintenance haproxy-config`, and Debian's HAProxy with it in front of real gunicorn servers.

HAProxy learns the state from the servers' `/_maintenance/ready`, so the same configuration works
with the lock file and with Redis. Every answer the app gives carries ``X-Served-By-App``: an
answer without it is one HAProxy gave itself.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from haproxy_support import SERVED_BY_APP, HAProxy, haproxy_project
from servers import TIMEOUT, AppProject, Gunicorn, Response, program, redis_server, wait_until  # noqa: F401

from flask_maintenance import Maintenance

AppFactory = Callable[..., Flask]
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JSON = {"Accept": "application/json"}
#: Seconds between HAProxy's health checks in the system tests.
INTERVAL = 0.3


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["maintenance", "haproxy-config", *args])


def config_for(app: Flask, page: Path, *servers: int, bind: int = 8080) -> str:
    args = ["--bind", f"127.0.0.1:{bind}", "--page", str(page), "--interval", str(INTERVAL)]
    for port in servers:
        args += ["--server", f"127.0.0.1:{port}"]
    result = run(app, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


class TestCommand:
    def test_a_valid_configuration_and_the_two_answers(self, make_app: AppFactory, tmp_path: Path) -> None:
        program("haproxy", "haproxy")
        app = make_app(MAINTENANCE_RETRY_AFTER=90, MAINTENANCE_RECOVERY_CHECKS="/healthz")
        page = tmp_path / "errors" / "maintenance.http"
        page.parent.mkdir()
        result = run(
            app, "--bind", ":80", "--server", "10.0.0.5:8000", "--server", "[::1]:8000", "--page", str(page)
        )
        assert result.exit_code == 0, result.output
        problem = tmp_path / "errors" / "maintenance-problem.http"
        assert result.stderr == f"Wrote {page}\nWrote {problem}\n"
        text = result.stdout
        assert text.startswith("# flask-maintenance: HAProxy (2.6 or later)")
        assert "    bind :80\n" in text
        assert "    server app1 10.0.0.5:8000 check\n" in text
        assert "    server app2 [::1]:8000 track app/app2\n" in text.split("backend app_json\n")[1]
        assert "    option httpchk GET /_maintenance/ready\n" in text
        assert "    option httpchk GET /_maintenance/live\n" in text
        assert f"    http-request return errorfile {page} if !fm_ready !fm_open\n" in text
        assert f"    errorfile 502 {problem}\n" in text
        # Checked by HAProxy itself.
        haproxy = HAProxy(tmp_path, text)
        checked = haproxy.check_config()
        assert checked.returncode == 0, checked.stderr

        head, _, body = page.read_bytes().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"\r\nRetry-After: 90\r\n" in head
        assert b"\r\nContent-Type: text/html; charset=utf-8\r\n" in head
        assert f"\r\nContent-Length: {len(body)}".encode() in head
        assert b'data-checks="/healthz"' in body
        head, _, body = problem.read_bytes().partition(b"\r\n\r\n")
        assert b"\r\nContent-Type: application/problem+json\r\n" in head
        assert json.loads(body)["retry_after"] == 90
        assert stat.S_IMODE(page.stat().st_mode) == 0o644

    def test_the_current_message_and_the_apps_paths(self, make_app: AppFactory, tmp_path: Path) -> None:
        app = make_app(
            APPLICATION_ROOT="/shop",
            MAINTENANCE_ALLOWED_PATHS="/health,/hooks/",
            MAINTENANCE_ALLOWED_IPS="10.0.0.0/8,2001:db8::/32",
            MAINTENANCE_API_PREFIXES="/api,/v2",
            MAINTENANCE_BYPASS_COOKIE="let_me_in",
        )
        extension: Maintenance = app.extensions["maintenance"]
        extension.enable(retry=120, message="Swapping <disks>", app=app)
        page = tmp_path / "maintenance.http"
        text = config_for(app, page, 8001)
        assert "    acl fm_open path_beg /shop/health/\n" in text
        assert "    acl fm_open path /shop/hooks\n" in text
        assert "    acl fm_open path /shop/_maintenance\n" in text
        assert "    acl fm_open src 10.0.0.0/8 2001:db8::/32\n" in text
        assert "    acl fm_open req.cook(let_me_in) -m found\n" in text
        assert "if { path /shop/v2 } || { path_beg /shop/v2/ }" in text
        assert "    option httpchk GET /shop/_maintenance/ready\n" in text
        assert "    timeout check 300ms\n" in text
        html = page.read_bytes().decode()
        assert "Swapping &lt;disks&gt;" in html and "Retry-After: 120\r\n" in html
        assert 'data-status-url="/shop/_maintenance"' in html

    def test_without_page_nothing_is_written(self, make_app: AppFactory) -> None:
        app = make_app()
        result = run(app, "--bind", "127.0.0.1:8080", "--server", "127.0.0.1:8000")
        assert result.exit_code == 0, result.output
        default = Path(app.instance_path) / "maintenance.http"
        assert f"errorfile 503 {default}\n" in result.stdout
        assert not default.exists()
        assert result.stderr == (
            f"warning: {default} does not exist yet: run again with --page {default} to write the answers\n"
        )

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("--bind", "8080"),
            ("--bind", "127.0.0.1:0"),
            ("--bind", "127.0.0.1:65536"),
            ("--bind", "127.0.0.1:\uff18\uff10"),  # full-width digits
            ("--bind", "a b:80"),
            ("--server", ":8000"),
            ("--server", "*:8000"),
            ("--server", "host;rm:80"),
            ("--server", "[nope]:80"),
            ("--server", "127.0.0.1:80 backup"),
            ("--server", "127.0.0.1:80\nbackend evil"),
            ("--interval", "0"),
            ("--interval", "soon"),
        ],
    )
    def test_bad_options_are_one_line_and_write_nothing(
        self, make_app: AppFactory, tmp_path: Path, option: str, value: str
    ) -> None:
        args = {"--bind": "127.0.0.1:8080", "--server": "127.0.0.1:8000", "--interval": "1"}
        args[option] = value
        page = tmp_path / "maintenance.http"
        result = run(make_app(), *[item for pair in args.items() for item in pair], "--page", str(page))
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "Traceback" not in result.output
        assert option in result.stderr
        assert not page.exists()

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("MAINTENANCE_ALLOWED_PATHS", "/a b"),
            ("MAINTENANCE_ALLOWED_PATHS", "/a#b"),
            ("MAINTENANCE_API_PREFIXES", '/a"b'),
            ("MAINTENANCE_BYPASS_COOKIE", "bypass cookie"),
            ("MAINTENANCE_BYPASS_COOKIE", "x$y"),
        ],
    )
    def test_what_haproxy_would_misread_is_refused(
        self, make_app: AppFactory, tmp_path: Path, key: str, value: str
    ) -> None:
        page = tmp_path / "maintenance.http"
        result = run(make_app(**{key: value}), "--bind", ":80", "--server", "h:1", "--page", str(page))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
        assert "which HAProxy would not read literally" in result.stderr
        assert not page.exists()

    def test_a_page_too_big_for_haproxys_buffer_is_refused(
        self, make_app: AppFactory, tmp_path: Path
    ) -> None:
        app = make_app(MAINTENANCE_RESPONSE_HEADERS={f"X-Pad-{n}": "x" * 900 for n in range(16)})
        page = tmp_path / "maintenance.http"
        result = run(app, "--bind", ":80", "--server", "h:1", "--page", str(page))
        assert result.exit_code == 1
        assert "more than HAProxy's buffer holds" in result.stderr
        assert not page.exists()

    def test_an_unwritable_page_is_one_line(self, make_app: AppFactory, tmp_path: Path) -> None:
        page = tmp_path / "missing" / "maintenance.http"
        result = run(make_app(), "--bind", ":80", "--server", "h:1", "--page", str(page))
        assert result.exit_code == 1
        assert result.stderr == f"Error: cannot write {page}: No such file or directory\n"
        assert result.stdout == ""


# -- the real thing ------------------------------------------------------------------------------


def from_app(response: Response) -> bool:
    return SERVED_BY_APP in response.headers


def assert_haproxy_page(response: Response, page: Path) -> None:
    """HAProxy's own 503 with the page, byte for byte, without asking the app."""
    assert response.status == 503
    assert not from_app(response)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["retry-after"] == "45"
    assert response.headers["cache-control"] == "no-store"
    assert response.body == page.read_bytes().partition(b"\r\n\r\n")[2]


def assert_haproxy_problem(response: Response) -> None:
    assert response.status == 503
    assert not from_app(response)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "45"
    assert json.loads(response.body)["type"] == "urn:flask-maintenance:problem:maintenance"


@contextmanager
def site(
    make_app: AppFactory, tmp_path: Path, servers: int, **config: str
) -> Iterator[tuple[Flask, list[Gunicorn], HAProxy, Path]]:
    """``servers`` gunicorn servers of one app and HAProxy in front, configured by the CLI.

    The site is switched from this process, through an app sharing the servers' state (their
    lock file or Redis): the real `flask` command is tested elsewhere and costs seconds a call.
    """
    config = {"MAINTENANCE_CHECK_INTERVAL": "0", "MAINTENANCE_RETRY_AFTER": "45", **config}
    project = haproxy_project(tmp_path / "site", **config)
    app = make_app(**config)
    page = tmp_path / "maintenance.http"
    with ExitStack() as stack:
        upstreams = [stack.enter_context(project.gunicorn()) for _ in range(servers)]
        haproxy = stack.enter_context(HAProxy(tmp_path, ""))
        haproxy.config.write_text(
            config_for(app, page, *(upstream.port for upstream in upstreams), bind=haproxy.port)
        )
        for upstream in upstreams:
            upstream.launch()
        for upstream in upstreams:
            upstream.wait_ready()
        haproxy.start()  # after the servers: its first health checks find them ready
        until(haproxy, "the app behind HAProxy", from_app)
        yield app, upstreams, haproxy, page


def until(haproxy: HAProxy, what: str, check: Callable[[Response], bool], path: str = "/") -> None:
    # A few check intervals at most: HAProxy sees a change at its next health check.
    wait_until(lambda: check(haproxy.get(path)), what, timeout=max(10 * INTERVAL, 5.0))


@pytest.mark.slow
class TestRealHAProxy:
    def test_with_the_lock_file(self, make_app: AppFactory, tmp_path: Path) -> None:
        lock = tmp_path / "maintenance.lock"
        with site(
            make_app,
            tmp_path,
            2,
            MAINTENANCE_LOCK_FILE=str(lock),
            MAINTENANCE_ALLOWED_PATHS="/health",
            MAINTENANCE_ALLOWED_IPS="127.0.0.2",
        ) as (app, upstreams, haproxy, page):
            switch: Maintenance = app.extensions["maintenance"]
            home = haproxy.get("/", BROWSER)
            assert (home.status, home.text[:22]) == (200, "home page from the app")
            assert from_app(home)

            switch.enable(secret="let-me-in", app=app)
            until(haproxy, "HAProxy to answer itself", lambda r: r.status == 503 and not from_app(r))
            assert_haproxy_page(haproxy.get("/", BROWSER), page)
            assert_haproxy_page(haproxy.get("/any/page?x=1"), page)
            assert_haproxy_page(haproxy.get("/form", BROWSER, method="POST"), page)
            head = haproxy.get("/", BROWSER, method="HEAD")
            assert (head.status, head.body, from_app(head)) == (503, b"", False)
            assert_haproxy_problem(haproxy.get("/api/items"))
            assert_haproxy_problem(haproxy.get("/", JSON))
            assert_haproxy_problem(haproxy.get("/", {"Accept": "application/problem+json"}))

            # What the app lets through reaches it, and the app decides.
            assert haproxy.get("/health/live").text == "alive"
            status = haproxy.get("/_maintenance")
            assert from_app(status) and json.loads(status.body)["active"] is True
            assert haproxy.get("/_maintenance/ready").status == 503
            assert haproxy.get("/_maintenance/live").status == 200
            allowed = haproxy.get("/", source="127.0.0.2")
            assert (allowed.status, allowed.text[:22]) == (200, "home page from the app")
            forged = haproxy.get("/", {"Cookie": "maintenance_bypass=forged"})
            assert forged.status == 503 and from_app(forged)  # the app checked it and said no
            bypass = haproxy.get("/_maintenance/bypass/let-me-in")
            assert bypass.status == 303 and from_app(bypass)
            cookie = bypass.headers["set-cookie"].split(";")[0]
            admin = haproxy.get("/", {"Cookie": cookie})
            assert (admin.status, admin.text[:22]) == (200, "home page from the app")
            # A deploy's verify step (`run --secret`) sends the secret in the bypass header.
            verify = haproxy.get("/", {"X-Maintenance-Bypass": "let-me-in"})
            assert (verify.status, verify.text[:22]) == (200, "home page from the app")
            wrong = haproxy.get("/", {"X-Maintenance-Bypass": "wrong"})
            assert wrong.status == 503 and from_app(wrong)

            # Readonly keeps the app ready: it answers reads and refuses writes itself.
            switch.enable(mode="readonly", app=app)
            until(haproxy, "the app to be ready again", lambda r: r.status == 200)
            assert haproxy.get("/form", BROWSER, method="POST").status == 503
            assert from_app(haproxy.get("/form", BROWSER, method="POST"))

            switch.disable(app=app)
            until(haproxy, "the app back", lambda r: r.status == 200 and from_app(r))
            assert haproxy.get("/api/items", JSON).status == 200

            # Every server dies: the same page and JSON at once, and once HAProxy has noticed.
            for upstream in upstreams:
                upstream.stop()
            for _ in range(2):
                assert_haproxy_page(haproxy.get("/", BROWSER), page)
                assert_haproxy_problem(haproxy.get("/api/items"))
                assert_haproxy_page(haproxy.get("/_maintenance"), page)
                assert_haproxy_page(haproxy.get("/health/live"), page)
                time.sleep(3 * INTERVAL)  # then again once the health checks have failed
            upstreams[1].start()
            until(haproxy, "one server back", lambda r: r.status == 200 and from_app(r))

    def test_two_servers_sharing_redis(self, make_app: AppFactory, tmp_path: Path, redis_server: Any) -> None:
        with site(make_app, tmp_path, 2, MAINTENANCE_BACKEND=redis_server.url) as (
            app,
            upstreams,
            haproxy,
            page,
        ):
            switch: Maintenance = app.extensions["maintenance"]
            pids = {haproxy.get("/").text for _ in range(6)}
            assert len(pids) == 2  # both servers answer

            switch.enable(app=app)
            until(haproxy, "HAProxy to answer itself", lambda r: r.status == 503 and not from_app(r))
            for _ in range(4):  # neither server is asked
                assert_haproxy_page(haproxy.get("/", BROWSER), page)
                assert_haproxy_problem(haproxy.get("/api/items", JSON))

            switch.disable(app=app)
            until(haproxy, "the app back", lambda r: r.status == 200 and from_app(r))
            # One server goes away: the other serves everything, nothing is refused.
            upstreams[0].stop()
            until(
                haproxy, "HAProxy to drop the dead server", lambda r: r.status == 200, "/_maintenance/ready"
            )
            assert all(haproxy.get("/").status == 200 for _ in range(4))
