"""What people see, in a real browser: the example app under gunicorn, seen by headless Chromium.

The site is ``example_app`` served by gunicorn with its own ``gunicorn.conf.py`` on a free
loopback port; maintenance is switched with the real ``flask --app example_app maintenance``
command. Each test opens fresh browsers (each its own Chromium and profile) and writes the
screenshots that docs/README.md shows into docs/screenshots/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from browser_support import (
    SCREENSHOTS,
    Browser,
    ChromeDriver,
    ExampleSite,
    Picture,
    browsers,
    foreign,
    hex_colour,
    read_png,
)
from servers import TIMEOUT, http_get, program

from flask_maintenance.backends.file import FileBackend

OpenBrowser = Callable[[], Browser]

# The built-in page's palette (flask_maintenance/responses.py).
PAGE_BACKGROUND = hex_colour("#f5f7fa")
CARD = hex_colour("#ffffff")
ACCENT = hex_colour("#d97706")
DARK_BACKGROUND = hex_colour("#1f2933")
DARK_CARD = hex_colour("#323f4b")
# The example app's banners (example_app/templates/base.html).
BANNER_BLUE = hex_colour("#dbeafe")
BANNER_RED = hex_colour("#fee2e2")

MESSAGE = "We are upgrading the database. Your guestbook entries are safe."
WINDOWS = {
    # name: (width, height, device pixel ratio, mobile)
    "desktop": (1280, 800, 1, False),
    "phone": (390, 844, 2, True),
}


@pytest.fixture(scope="module", autouse=True)
def chromium_installed() -> None:
    """Skip (fail in CI) before starting anything when the browser is missing."""
    program("chromium", "chromium")
    program("chromedriver", "chromium-driver")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromeDriver]:
    server = ChromeDriver(tmp_path_factory.mktemp("chromedriver"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleSite]:
    server = ExampleSite(tmp_path_factory.mktemp("site"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def maintenance_off(site: ExampleSite) -> Iterator[None]:
    """Every test leaves maintenance off and nothing scheduled, even when it fails.

    The workers may serve this state for one more check interval; the next test's own switch
    waits that out before it looks.
    """
    yield
    lock = FileBackend(str(site.instance / "maintenance.lock"))
    lock.clear()
    lock.sibling("plan").clear()


@pytest.fixture
def open_browser(driver: ChromeDriver, tmp_path: Path) -> Iterator[OpenBrowser]:
    with browsers(driver, tmp_path) as open_one:
        yield open_one


def assert_not_blank(png: bytes, *colours: tuple[int, int, int]) -> Picture:
    """The screenshot has several colours, ``colours`` among them (the styles were applied)."""

    def enough(picture: Picture) -> bool:
        return len(picture.colours) >= 8 and all(colour in picture.colours for colour in colours)

    picture = read_png(png, enough=enough)
    missing = [colour for colour in colours if colour not in picture.colours]
    assert not missing, f"{missing} not in the screenshot; its colours: {sorted(picture.colours)[:20]}..."
    assert len(picture.colours) >= 8, f"the screenshot is (nearly) blank: {picture.colours}"
    return picture


def assert_stayed_home(browser: Browser, site: ExampleSite) -> None:
    """Nothing the page asked for left 127.0.0.1: not in the browser's log, not in the page's list."""
    requested = browser.network_log()
    assert browser.url in requested, f"the network log missed the page itself: {requested}"
    assert foreign(requested, site.origin) == []
    resources = browser.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert foreign(resources, site.origin) == []


def assert_maintenance_page(browser: Browser, site: ExampleSite) -> None:
    """The built-in page: its text on screen, its inline style and script applied, nothing fetched."""
    assert browser.js("return document.title") == "Down for maintenance"
    text = browser.text()
    assert "Down for maintenance" in text
    assert MESSAGE in text
    assert "We expect to be back by" in text and "your time)" in text  # the inline script ran
    assert "This page reloads by itself" in text
    # The card stands out from the page: the inline stylesheet applied (unstyled, both would be
    # transparent).
    colours = browser.js(
        "return [getComputedStyle(document.querySelector('main')).backgroundColor,"
        " getComputedStyle(document.body).backgroundColor]"
    )
    assert colours == ["rgb(255, 255, 255)", "rgb(245, 247, 250)"]
    # Everything is inline: no stylesheet, script, image, font or frame to fetch.
    fetched = browser.js(
        "return [...document.querySelectorAll('[src], link[href], iframe, object')]"
        ".map(e => e.getAttribute('src') || e.getAttribute('href') || e.tagName)"
        ".filter(url => !url.startsWith('data:'))"
    )
    assert fetched == []
    assert_stayed_home(browser, site)


def assert_fits(browser: Browser, width: int) -> None:
    """The layout viewport is the window (so the meta viewport works on a phone), nothing scrolls
    sideways, and the heading and the card are inside the window."""
    layout = browser.js(
        "const h = document.querySelector('h1').getBoundingClientRect();"
        "const card = document.querySelector('main').getBoundingClientRect();"
        "return {viewport: innerWidth, scroll: document.documentElement.scrollWidth,"
        " heading: h.left >= 0 && h.right <= innerWidth && h.top >= 0 && h.bottom <= innerHeight,"
        " card: card.left >= 0 && card.right <= innerWidth}"
    )
    assert layout["viewport"] == width, layout
    assert layout["scroll"] <= width, layout
    assert layout["heading"] and layout["card"], layout


def banner(browser: Browser) -> str:
    """The text of the example app's maintenance banner, if it is on screen."""
    text: str = browser.js(
        "const b = document.getElementById('maintenance-banner');"
        "if (!b) return '';"
        "const r = b.getBoundingClientRect();"
        "const shown = r.top >= 0 && r.height > 0 && getComputedStyle(b).visibility === 'visible';"
        "return shown ? b.innerText : '';"
    )
    return text


class TestMaintenancePage:
    @pytest.mark.parametrize("window", ["desktop", "phone"])
    def test_self_contained_and_readable(self, site: ExampleSite, open_browser: OpenBrowser, window: str) -> None:
        width, height, scale, mobile = WINDOWS[window]
        site.maintenance("on", "--message", MESSAGE, "--for", "30m")
        browser = open_browser()
        browser.viewport(width, height, scale=scale, mobile=mobile)
        # A reader away from UTC, so that the page shows the end in their own time too.
        browser.cdp("Emulation.setTimezoneOverride", timezoneId="Europe/Berlin")
        browser.get(site.url("/guestbook"))

        assert browser.fetch_status("/guestbook") == 503
        assert_maintenance_page(browser, site)
        assert_fits(browser, width)
        png = browser.screenshot(SCREENSHOTS / f"maintenance-{window}.png")
        picture = assert_not_blank(png, PAGE_BACKGROUND, CARD, ACCENT)
        assert (picture.width, picture.height) == (width * scale, height * scale)

    def test_dark_mode(self, site: ExampleSite, open_browser: OpenBrowser) -> None:
        site.maintenance("on", "--message", MESSAGE, "--for", "30m")
        browser = open_browser()
        browser.viewport(1280, 800)
        browser.cdp("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
        browser.get(site.url("/guestbook"))
        assert browser.js("return getComputedStyle(document.body).backgroundColor") == "rgb(31, 41, 51)"
        png = browser.screenshot(SCREENSHOTS / "maintenance-dark.png")
        assert_not_blank(png, DARK_BACKGROUND, DARK_CARD, ACCENT)

    def test_reloads_into_the_site_soon_after_off(self, site: ExampleSite, open_browser: OpenBrowser) -> None:
        site.maintenance("on")
        browser = open_browser()
        browser.get(site.url("/"))
        assert browser.js("return document.title") == "Down for maintenance"
        browser.js("window.stillTheMaintenancePage = true")

        site.maintenance("off", settle=False)
        # The page polls the status every 4-6 s and the workers see the switch within a second:
        # a few seconds, with room to spare on a busy machine.
        browser.wait_for(
            "!window.stillTheMaintenancePage && document.readyState === 'complete'"
            " && document.title.startsWith('Welcome')",
            "the maintenance page to reload into the site",
            timeout=TIMEOUT,
        )
        assert browser.url == site.url("/")  # reloaded in place, no redirect
        assert "Welcome to the guestbook" in browser.text()
        requested = browser.network_log()
        assert site.url("/_maintenance") in requested  # it was the page's own poll
        assert foreign(requested, site.origin) == []


class TestBanner:
    def test_banner_mode_shows_the_message_on_every_page(
        self, site: ExampleSite, open_browser: OpenBrowser
    ) -> None:
        message = "Searches are slow today while we reindex."
        site.maintenance("on", "--mode", "banner", "--message", message)
        browser = open_browser()
        browser.viewport(1280, 800)
        for path, title in (("/guestbook", "Sign the guestbook"), ("/", "Welcome")):
            browser.get(site.url(path))
            assert browser.fetch_status(path) == 200
            assert browser.js("return document.title").startswith(title)
            assert banner(browser) == message
        assert_stayed_home(browser, site)
        png = browser.screenshot(SCREENSHOTS / "banner.png")
        assert_not_blank(png, BANNER_BLUE)

    def test_a_scheduled_window_is_announced_before_it_starts(
        self, site: ExampleSite, open_browser: OpenBrowser
    ) -> None:
        starts = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(hours=1)
        ends = starts + timedelta(minutes=30)
        message = "The site will be down for the database upgrade."
        site.maintenance("schedule", "--at", starts.strftime("%Y-%m-%dT%H:%M:%SZ"), "--for", "30m", "--message", message)
        browser = open_browser()
        browser.viewport(1280, 800)
        browser.get(site.url("/"))
        assert browser.fetch_status("/") == 200  # announced, not started
        assert banner(browser) == (
            f"Heads up: Scheduled maintenance at {starts:%Y-%m-%d %H:%M} UTC"
            f" until {ends:%Y-%m-%d %H:%M} UTC: {message}"
        )
        assert "a window is scheduled" in browser.text()
        png = browser.screenshot(SCREENSHOTS / "scheduled-banner.png")
        assert_not_blank(png, BANNER_BLUE)


class TestBypass:
    def test_the_link_lets_the_admin_in_and_no_one_else(
        self, site: ExampleSite, open_browser: OpenBrowser
    ) -> None:
        output = site.maintenance("on", "--secret", "--message", MESSAGE)
        (link,) = [line.split()[2] for line in output.splitlines() if line.strip().startswith("bypass link:")]
        assert link.startswith("/_maintenance/bypass/")

        admin = open_browser()
        admin.viewport(1280, 800)
        admin.get(site.url(link))
        assert admin.url == site.url("/")  # sent on to the home page
        cookie = admin.cookies()["maintenance_bypass"]
        assert cookie.http_only
        assert cookie.same_site == "Lax"
        assert cookie.path == "/"
        assert "maintenance_bypass" not in admin.js("return document.cookie")  # HttpOnly indeed
        assert admin.js("return document.title").startswith("Welcome")
        assert banner(admin) == f"Maintenance is on (you are allowed through): {MESSAGE}"
        for path in ("/", "/guestbook", "/health/ready"):
            assert admin.fetch_status(path) == 200, path
        png = admin.screenshot(SCREENSHOTS / "admin-bypass.png")
        assert_not_blank(png, BANNER_RED)

        visitor = open_browser()
        visitor.get(site.url("/"))
        assert visitor.cookies() == {}
        assert visitor.js("return document.title") == "Down for maintenance"
        assert visitor.fetch_status("/") == 503
        assert visitor.fetch_status("/guestbook") == 503
        # And without any browser at all.
        assert http_get(site.port, "/").status == 503

        # A guessed link is refused and sets nothing.
        visitor.get(site.url("/_maintenance/bypass/not-the-secret"))
        assert "invalid or expired bypass link" in visitor.text()
        assert visitor.cookies() == {}
        assert visitor.fetch_status("/") == 503
