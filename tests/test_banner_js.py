"""``<status path>/banner.js`` on a page Flask does not render, in a real Chromium.

The page is a static HTML file in the app's static folder (what a single-page app's index.html
is); it includes the script with one tag. The app is served by a real HTTP server on 127.0.0.1,
switched with the Python API, and seen by Debian's Chromium in Seoul's time zone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser_support import Visitor, chromium, foreign
from flask import Flask, Response
from servers import HOST, TIMEOUT

from flask_maintenance import Maintenance
from flask_maintenance.endpoints import banner_js
from flask_maintenance.times import utcnow

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Shop</title>
<script src="/_maintenance/banner.js" data-interval="1" async></script></head>
<body><main><h1>The shop</h1><p>Everything for your garden.</p></main></body>
</html>
"""
BANNER = ".maintenance-banner"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[Flask, Maintenance, str]]:
    """The app with the static page, under a real threaded HTTP server; its origin."""
    from werkzeug.serving import make_server

    static = tmp_path / "static"
    static.mkdir()
    (static / "shop.html").write_text(PAGE)
    app = Flask("shop", static_folder=str(static), instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="banner-secret", MAINTENANCE_CHECK_INTERVAL=0)
    maintenance = Maintenance(app)
    server = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield app, maintenance, f"http://{HOST}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(TIMEOUT)


def test_small_one_file_and_served_in_every_mode(app: Flask, maintenance: Maintenance) -> None:
    assert len(banner_js()) < 4096
    client = app.test_client()
    for mode in ("full", "readonly", "banner"):
        maintenance.enable(mode=mode, app=app)
        answer = client.get("/_maintenance/banner.js")
        assert answer.status_code == 200 and answer.data == banner_js()
        assert answer.mimetype == "text/javascript"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get("/_maintenance/banner.js", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304
    # Nothing else under the status path opens up in full maintenance.
    maintenance.enable(mode="full", app=app)
    assert client.get("/_maintenance/banner.jsx").status_code == 503


@pytest.mark.slow
def test_the_banner_on_a_static_page(shop: tuple[Flask, Maintenance, str], tmp_path: Path) -> None:
    app, maintenance, origin = shop
    start = utcnow().replace(second=0, microsecond=0) + timedelta(hours=3)
    maintenance.schedule(start, start + timedelta(hours=2), message="New checkout <b>soon</b>", app=app)
    seoul = ZoneInfo("Asia/Seoul")
    with chromium(tmp_path / "chromium") as browser:
        visitor = Visitor(browser.new_context(locale="en-GB", timezone_id="Asia/Seoul"))
        page = visitor.page
        page.goto(origin + "/static/shop.html")
        banner = page.locator(BANNER)
        banner.wait_for()
        text = banner.inner_text()
        # Announced ahead, in the visitor's own time, with the operator's text as text.
        assert text.startswith("Scheduled maintenance: ")
        for moment in (start, start + timedelta(hours=2)):
            assert f"{moment.astimezone(seoul):%H:%M}" in text
        assert local_day(start.astimezone(seoul)) in text
        assert "New checkout <b>soon</b>" in text and page.locator(f"{BANNER} b").count() == 0
        # Accessible: a polite status region above the page, closed with the keyboard.
        assert page.get_by_role("status").inner_text() == text
        assert page.evaluate("document.body.firstElementChild.className") == "maintenance-banner"
        assert page.locator("h1").inner_text() == "The shop"
        close = page.get_by_role("button", name="Dismiss maintenance notice")
        close.focus()
        page.keyboard.press("Enter")
        banner.wait_for(state="detached")
        page.reload()
        page.wait_for_timeout(1500)  # one poll: the same news stays dismissed
        assert banner.count() == 0

        # News: read-only mode comes back, whatever was dismissed before.
        maintenance.enable(mode="readonly", message="Orders are paused", app=app)
        banner.wait_for()
        visitor.wait_for("document.querySelector('.maintenance-banner p').textContent.includes('paused')")
        assert banner.inner_text().startswith(
            "Read-only mode: changes cannot be saved right now. Orders are paused"
        )
        maintenance.enable(mode="banner", message="Slow search today", app=app)
        visitor.wait_for(
            "document.querySelector('.maintenance-banner p').textContent.includes('Slow search')"
        )
        assert banner.inner_text().startswith("Maintenance in progress. Slow search today")

        # Over: off and nothing planned, the banner goes away by itself.
        maintenance.disable(app=app)
        maintenance.cancel(app=app)
        banner.wait_for(state="detached")
        assert foreign(visitor.requested, origin) == []
        visitor.context.close()


def local_day(moment: datetime) -> str:
    """The day as Chromium's en-GB medium date style writes it (``5 Dec 2026``)."""
    return f"{moment.day} {moment:%b %Y}"


@pytest.mark.slow
def test_a_strict_csp_page_with_a_huge_interval(shop: tuple[Flask, Maintenance, str], tmp_path: Path) -> None:
    """A page under a CSP without 'unsafe-inline' still gets its banner, styled; an interval past
    what a browser timer holds (24.8 days) polls rarely, not in a tight loop."""
    app, maintenance, origin = shop
    page_html = PAGE.replace('data-interval="1"', 'data-interval="3000000"')
    (Path(app.static_folder or "") / "strict.html").write_text(page_html)

    @app.after_request
    def strict_csp(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        return response

    maintenance.enable(mode="readonly", message="Orders are paused", app=app)
    with chromium(tmp_path / "chromium") as browser:
        visitor = Visitor(browser.new_context())
        page = visitor.page
        page.goto(origin + "/static/strict.html")
        banner = page.locator(BANNER)
        banner.wait_for()
        assert "Orders are paused" in banner.inner_text()
        colour = page.evaluate(
            "getComputedStyle(document.querySelector('.maintenance-banner')).backgroundColor"
        )
        assert colour == "rgb(254, 243, 199)"
        page.wait_for_timeout(1500)
        polls = [url for url in visitor.requested if url == origin + "/_maintenance"]
        assert len(polls) == 1
        visitor.context.close()
