"""Maintenance at the proxy: `render-page`, `nginx-config`, and a real nginx in front of the app.

nginx is Debian's, started by hand on a free loopback port; when the tests run as root its worker
runs as ``nobody``, so the page and the lock file must really be reachable by another user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from servers import AppProject, Nginx, public_dir  # noqa: F401 (fixture)

from flask_maintenance import Maintenance
from flask_maintenance.proxy import PAGE_URI

AppFactory = Callable[..., Flask]


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["maintenance", *args])


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


class TestRenderPage:
    def test_the_default_page_when_off(self, app: Flask, public_dir: Path) -> None:
        page = public_dir / "maintenance.html"
        result = run(app, "render-page", str(page))
        assert result.exit_code == 0, result.output
        assert result.stdout == f"Wrote the maintenance page to {page}\n"
        assert result.stderr == ""  # public_dir: every folder above it can be entered
        html = page.read_text()
        assert html.startswith("<!doctype html>")
        assert "<title>Down for maintenance</title>" in html
        assert "Please try again in about 60 seconds." in html

    def test_the_current_message_and_retry(
        self, app: Flask, maintenance: Maintenance, public_dir: Path
    ) -> None:
        maintenance.enable(retry=600, message="Back at <b>noon</b>", app=app)
        page = public_dir / "maintenance.html"
        assert run(app, "render-page", str(page)).exit_code == 0
        html = page.read_text()
        assert "Back at &lt;b&gt;noon&lt;/b&gt;" in html
        assert "Please try again in about 10 minutes." in html

    def test_readonly_becomes_the_full_page(
        self, app: Flask, maintenance: Maintenance, public_dir: Path
    ) -> None:
        # nginx cannot let reads through, so its page never promises that they work.
        maintenance.enable(mode="readonly", app=app)
        page = public_dir / "maintenance.html"
        assert run(app, "render-page", str(page)).exit_code == 0
        assert "<title>Down for maintenance</title>" in page.read_text()

    def test_written_atomically_and_readable_by_everyone(self, app: Flask, public_dir: Path) -> None:
        page = public_dir / "maintenance.html"
        page.write_text("old page")
        old_inode = page.stat().st_ino
        previous = os.umask(0o077)
        try:
            assert run(app, "render-page", str(page)).exit_code == 0
        finally:
            os.umask(previous)
        info = page.stat()
        assert stat.S_IMODE(info.st_mode) == 0o644
        assert info.st_ino != old_inode  # a new file renamed over the old one, not rewritten
        assert sorted(path.name for path in public_dir.iterdir()) == ["maintenance.html"]

    def test_warns_in_one_line_about_a_folder_others_cannot_enter(self, app: Flask, public_dir: Path) -> None:
        private = public_dir / "private"
        private.mkdir(mode=0o700)
        private.chmod(0o700)
        result = run(app, "render-page", str(private / "maintenance.html"))
        assert result.exit_code == 0
        assert result.stderr == (
            f"warning: other users cannot enter {private} (no o+x): "
            f"nginx's worker may not be able to read the page {private / 'maintenance.html'}\n"
        )
        assert (private / "maintenance.html").exists()

    def test_a_missing_folder_is_one_line_error(self, app: Flask, tmp_path: Path) -> None:
        target = tmp_path / "no" / "such" / "maintenance.html"
        error = one_line_error(run(app, "render-page", str(target)))
        assert error == f"Error: cannot write the page {target}: No such file or directory\n"


class TestNginxConfig:
    def snippet(self, make_app: AppFactory, *args: str, **config: Any) -> Result:
        result = run(make_app(**config), "nginx-config", *args)
        assert result.exit_code == 0, result.output
        return result

    def test_the_server_snippet(self, make_app: AppFactory, public_dir: Path) -> None:
        lock, page = public_dir / "maintenance.lock", public_dir / "site" / "maintenance.html"
        result = self.snippet(
            make_app, "--page", str(page), MAINTENANCE_LOCK_FILE=str(lock), MAINTENANCE_RETRY_AFTER=90
        )
        text = result.stdout
        assert f'if (-f "{lock}") {{' in text
        assert "    return 503;" in text
        assert f'    alias "{page}";' in text
        assert "    add_header Retry-After 90 always;" in text
        assert "    add_header Cache-Control no-store always;" in text
        assert f"error_page 502 504 =503 {PAGE_URI};" in text
        assert "# Render the page first: flask maintenance render-page " + str(page) in text
        assert "geo" not in text and "$flask_maintenance_allowed" not in text
        assert "warning" not in text  # warnings go to stderr, never into the included file
        assert (
            result.stderr
            == f"warning: {page} does not exist yet: run `flask maintenance render-page {page}`\n"
        )

    def test_the_page_defaults_to_beside_the_lock_file(self, make_app: AppFactory, public_dir: Path) -> None:
        text = self.snippet(make_app, MAINTENANCE_LOCK_FILE=str(public_dir / "maintenance.lock")).stdout
        assert f'alias "{public_dir / "maintenance.html"}";' in text

    def test_allowed_paths_and_the_status_path_pass(self, make_app: AppFactory, public_dir: Path) -> None:
        text = self.snippet(
            make_app,
            MAINTENANCE_LOCK_FILE=str(public_dir / "m.lock"),
            MAINTENANCE_ALLOWED_PATHS=["/health/", "/v1.0"],
        ).stdout
        assert 'if ($uri ~ "^(/health|/v1\\.0|/_maintenance|/robots\\.txt)(/|$)") {' in text

    def test_allowed_addresses_need_the_http_part(self, make_app: AppFactory, public_dir: Path) -> None:
        config = {
            "MAINTENANCE_LOCK_FILE": str(public_dir / "maintenance.lock"),
            "MAINTENANCE_ALLOWED_IPS": ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"],
        }
        server = self.snippet(make_app, **config).stdout
        assert "if ($flask_maintenance_allowed) {" in server
        assert "`flask maintenance nginx-config --http`, included at http {} level" in server

        http = self.snippet(make_app, "--http", **config)
        assert http.stderr == ""
        lines = [line for line in http.stdout.splitlines() if not line.startswith("#")]
        assert lines == [
            "geo $flask_maintenance_allowed {",
            "    default 0;",
            "    127.0.0.1/32 1;",
            "    10.0.0.0/8 1;",
            "    2001:db8::/32 1;",
            "}",
        ]

    def test_no_allowed_addresses_no_http_part(self, make_app: AppFactory, public_dir: Path) -> None:
        http = self.snippet(
            make_app, "--http", MAINTENANCE_LOCK_FILE=str(public_dir / "maintenance.lock")
        ).stdout
        assert (
            http
            == "# flask-maintenance: MAINTENANCE_ALLOWED_IPS is empty, so nothing is needed at http {} level.\n"
        )

    def test_redis_backend_is_refused_in_one_line(self, make_app: AppFactory) -> None:
        pytest.importorskip("redis")
        app = make_app(MAINTENANCE_BACKEND="redis://:secret@10.1.2.3:6379/0")
        for args in ((), ("--http",)):
            error = one_line_error(run(app, "nginx-config", *args))
            assert error.startswith("Error: nginx cannot see a state kept in redis redis://10.1.2.3:6379/0")
            assert "secret" not in error

    @pytest.mark.parametrize("name", ["main tenance.lock", "$host.lock", 'a"b.lock', "a;b.lock"])
    def test_a_path_nginx_would_misread_is_refused(
        self, make_app: AppFactory, public_dir: Path, name: str
    ) -> None:
        app = make_app(MAINTENANCE_LOCK_FILE=str(public_dir / name))
        assert "which nginx would not read literally" in one_line_error(run(app, "nginx-config"))

    def test_warns_when_nginx_may_not_see_the_lock_file(self, make_app: AppFactory, public_dir: Path) -> None:
        private = public_dir / "instance"
        private.mkdir()
        private.chmod(0o700)
        page = public_dir / "maintenance.html"
        page.write_text("page")
        result = self.snippet(
            make_app, "--page", str(page), MAINTENANCE_LOCK_FILE=str(private / "maintenance.lock")
        )
        assert result.stderr == (
            f"warning: other users cannot enter {private} (no o+x): "
            f"nginx's worker may not be able to see the lock file {private / 'maintenance.lock'}\n"
        )


@pytest.mark.slow
class TestRealNginx:
    """Debian's nginx with the generated snippet in front of the app under gunicorn."""

    def test_lock_file_app_down_and_back(
        self, make_app: AppFactory, public_dir: Path, tmp_path: Path
    ) -> None:
        lock, page = public_dir / "maintenance.lock", public_dir / "maintenance.html"
        config = {
            "MAINTENANCE_LOCK_FILE": str(lock),
            "MAINTENANCE_RETRY_AFTER": "77",
            "MAINTENANCE_ALLOWED_PATHS": "/health,/ping.v1",
            "MAINTENANCE_CHECK_INTERVAL": "0",
        }
        app = make_app(**config)  # the site's config, for the CLI in this process
        extension: Maintenance = app.extensions["maintenance"]
        snippet = run(app, "nginx-config", "--page", str(page))
        assert snippet.exit_code == 0, snippet.output

        project = AppProject(tmp_path / "site", **config)
        with project.gunicorn() as upstream:
            nginx = Nginx(public_dir, server_snippet=snippet.stdout, upstream_port=upstream.port)
            with nginx:
                upstream.launch()
                nginx.launch()
                upstream.wait_ready()
                nginx.wait_ready()
                home = nginx.get("/")
                assert (home.status, home.text[:22]) == (200, "home page from the app")

                # Maintenance on: the app's answer would say Retry-After 30 and carry the banner
                # header; nginx's says 77 (the config) and is the static page, byte for byte.
                extension.enable(retry=30, message="Swapping the database", app=app)
                assert run(app, "render-page", str(page)).exit_code == 0
                for refused in (nginx.get("/"), nginx.get("/any/page"), nginx.post("/form", b"a=1")):
                    assert refused.status == 503
                    assert refused.headers["retry-after"] == "77"
                    assert refused.headers["cache-control"] == "no-store"
                    assert refused.headers["content-type"] == "text/html; charset=utf-8"
                    assert refused.headers["server"].startswith("nginx")
                    assert "x-maintenance-banner" not in refused.headers
                    assert refused.body == page.read_bytes()
                assert "Swapping the database" in refused.text

                # What the app answers itself, as it would without the proxy.
                assert nginx.get("/health/live").text == "alive"
                assert nginx.get("/ping.v1").status == 404  # passed on: the app has no such page
                assert nginx.get("/pingXv1").status == 503  # the dot is not a wildcard
                status = nginx.get("/_maintenance")
                assert status.status == 200 and '"active":true' in status.text.replace(" ", "")
                assert nginx.get(PAGE_URI).status == 404  # internal only

                # The app dies (and maintenance goes off): the page again, not a bare 502.
                upstream.stop()
                extension.disable(app=app)
                down = nginx.get("/")
                assert down.status == 503
                assert down.headers["retry-after"] == "77"
                assert down.body == page.read_bytes()

                upstream.start()
                back = nginx.get("/")
                assert (back.status, back.text[:22]) == (200, "home page from the app")

    def test_the_http_geo_block_lets_allowed_addresses_through(
        self, make_app: AppFactory, public_dir: Path, tmp_path: Path
    ) -> None:
        lock, page = public_dir / "maintenance.lock", public_dir / "maintenance.html"
        ours = make_app(MAINTENANCE_LOCK_FILE=str(lock), MAINTENANCE_ALLOWED_IPS="127.0.0.1/32")
        theirs = make_app(MAINTENANCE_LOCK_FILE=str(lock), MAINTENANCE_ALLOWED_IPS="10.0.0.0/8")
        ours.extensions["maintenance"].enable(app=ours)
        assert run(ours, "render-page", str(page)).exit_code == 0

        project = AppProject(
            tmp_path / "site", MAINTENANCE_LOCK_FILE=str(lock), MAINTENANCE_ALLOWED_IPS="127.0.0.1/32"
        )
        with project.gunicorn() as upstream:

            def proxy_for(app: Flask, with_http: bool = True) -> Nginx:
                server = run(app, "nginx-config", "--page", str(page)).stdout
                http = run(app, "nginx-config", "--http").stdout if with_http else ""
                return Nginx(
                    public_dir, server_snippet=server, http_snippet=http, upstream_port=upstream.port
                )

            # Without the http {} part, nginx refuses the configuration rather than guess.
            incomplete = proxy_for(ours, with_http=False).check_config()
            assert incomplete.returncode != 0
            assert 'unknown "flask_maintenance_allowed" variable' in incomplete.stderr

            with proxy_for(ours) as allowing, proxy_for(theirs) as refusing:
                for server in (upstream, allowing, refusing):
                    server.launch()
                for server in (upstream, allowing, refusing):
                    server.wait_ready()
                passed = allowing.get("/")  # from 127.0.0.1, which both nginx and the app allow
                assert (passed.status, passed.text[:22]) == (200, "home page from the app")
                refused = refusing.get("/")  # 127.0.0.1 is not in 10.0.0.0/8
                assert refused.status == 503
                assert refused.body == page.read_bytes()
